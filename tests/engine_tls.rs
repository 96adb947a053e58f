//! `docker.engine` over the network, safely: a TLS proxy made here (its own CA, a server
//! certificate for 127.0.0.1, a client certificate it requires) in front of the real
//! engine's socket; TLS asked for and not possible must never become plain HTTP; ssh://
//! gets one clear line; and DOCKER_HOST's userinfo and query values never reach output.

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::lab::docker_or_skip;
use common::{free_port, Run, Tree};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::net::{TcpListener, UnixStream};

const SOCKET: &str = "/var/run/docker.sock";

/// A CA, a server certificate for 127.0.0.1 and localhost, and a client certificate,
/// all made for this test.
struct Pki {
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    server: (CertificateDer<'static>, PrivateKeyDer<'static>),
    client_pem: (String, String),
}

fn make_pki(name: &str) -> Pki {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, format!("{name} test CA"));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();

    let mut server = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_key = KeyPair::generate().unwrap();
    let server_cert = server.signed_by(&server_key, &ca).unwrap();

    let mut client = CertificateParams::new(Vec::<String>::new()).unwrap();
    client
        .distinguished_name
        .push(DnType::CommonName, "pd-doctor test client");
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_key = KeyPair::generate().unwrap();
    let client_cert = client.signed_by(&client_key, &ca).unwrap();

    Pki {
        ca_pem: ca.pem(),
        ca_der: ca.der().clone(),
        server: (
            server_cert.der().clone(),
            PrivatePkcs8KeyDer::from(server_key.serialize_der()).into(),
        ),
        client_pem: (client_cert.pem(), client_key.serialize_pem()),
    }
}

impl Pki {
    /// A DOCKER_CERT_PATH with the given files of this PKI.
    fn cert_dir(&self, files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        self.write(dir.path(), files);
        dir
    }

    fn write(&self, dir: &Path, files: &[&str]) {
        std::fs::create_dir_all(dir).unwrap();
        for f in files {
            let text = match *f {
                "ca.pem" => &self.ca_pem,
                "cert.pem" => &self.client_pem.0,
                "key.pem" => &self.client_pem.1,
                other => panic!("no {other}"),
            };
            std::fs::write(dir.join(f), text).unwrap();
        }
    }
}

/// What the proxy saw of each connection made to it.
#[derive(Debug, Clone)]
struct Seen {
    first_bytes: Vec<u8>,
    handshake: Result<(), String>,
}

/// A TLS server on 127.0.0.1:<ephemeral> that requires a client certificate signed by
/// its CA and, once the handshake is done, forwards bytes to the engine's socket.
struct Proxy {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    async fn start(pki: &Pki) -> Proxy {
        Proxy::start_with(pki, true).await
    }

    /// `forward: false`: every handshake is accepted and the connection then closed
    /// without a byte of answer.
    async fn start_with(pki: &Pki, forward: bool) -> Proxy {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        roots.add(pki.ca_der.clone()).unwrap();
        let verifier = WebPkiClientVerifier::builder_with_provider(roots.into(), provider.clone())
            .build()
            .unwrap();
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![pki.server.0.clone()], pki.server.1.clone_key())
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let record = record.clone();
                tokio::spawn(async move {
                    let mut first = [0u8; 8];
                    let n = tokio::time::timeout(Duration::from_secs(5), stream.peek(&mut first))
                        .await
                        .ok()
                        .and_then(Result::ok)
                        .unwrap_or(0);
                    let handshake = acceptor.accept(stream).await;
                    record.lock().unwrap().push(Seen {
                        first_bytes: first[..n].to_vec(),
                        handshake: handshake.as_ref().map(|_| ()).map_err(|e| e.to_string()),
                    });
                    if let Some(mut tls) = handshake.ok().filter(|_| forward) {
                        if let Ok(mut engine) = UnixStream::connect(SOCKET).await {
                            let _ = tokio::io::copy_bidirectional(&mut tls, &mut engine).await;
                        }
                    }
                });
            }
        });
        Proxy { port, seen, task }
    }

    fn host(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }

    /// Every connection so far, once those in flight have been recorded.
    async fn seen(&self) -> Vec<Seen> {
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.seen.lock().unwrap().clone()
    }

    /// Whatever reached the proxy opened a TLS handshake (a ClientHello record, 0x16),
    /// never a plain-HTTP request.
    async fn assert_only_tls(&self) -> Vec<Seen> {
        let seen = self.seen().await;
        for s in &seen {
            assert!(
                !s.first_bytes.starts_with(b"GET") && !s.first_bytes.starts_with(b"HEAD"),
                "plain HTTP reached the proxy: {s:?}"
            );
            assert_eq!(
                s.first_bytes.first(),
                Some(&0x16),
                "not a ClientHello: {s:?}"
            );
        }
        seen
    }
}

fn tree() -> Tree {
    let t = Tree::new(free_port(), free_port());
    t.config("");
    t
}

/// The engine checks with `DOCKER_TLS_VERIFY=1`: the engine at `host`, the TLS files in
/// `certs`, as the docker CLI takes them from the environment.
async fn verified(t: &Tree, host: &str, certs: &Path) -> Run {
    let certs = certs.display().to_string();
    let env = [
        ("DOCKER_HOST", host),
        ("DOCKER_TLS_VERIFY", "1"),
        ("DOCKER_CERT_PATH", certs.as_str()),
    ];
    run_with(t, &ENGINE_ONLY, &env).await
}

/// pd-doctor on `t` with `args`, the Docker variables cleared but for `env`, and an
/// empty docker CLI config folder unless `env` names one.
async fn run_with(t: &Tree, args: &[&str], env: &[(&str, &str)]) -> Run {
    let config = tempfile::tempdir().unwrap();
    let mut cmd = common::command(t.root(), args);
    for name in [
        "DOCKER_HOST",
        "DOCKER_CONTEXT",
        "DOCKER_TLS",
        "DOCKER_TLS_VERIFY",
        "DOCKER_CERT_PATH",
    ] {
        cmd.env_remove(name);
    }
    cmd.env("DOCKER_CONFIG", config.path());
    for (k, v) in env {
        cmd.env(k, v);
    }
    common::output(&mut cmd).await
}

const ENGINE_ONLY: [&str; 5] = ["--json", "--only", "docker.engine", "--timeout", "5s"];

#[tokio::test(flavor = "multi_thread")]
async fn tls_with_client_certificates_reaches_the_engine() {
    if !docker_or_skip("tls_with_client_certificates_reaches_the_engine") {
        return;
    }
    assert!(Path::new(SOCKET).exists(), "no engine socket at {SOCKET}");
    let pki = make_pki("ok");
    let proxy = Proxy::start(&pki).await;
    let certs = pki.cert_dir(&["ca.pem", "cert.pem", "key.pem"]);
    let t = tree();
    let host = proxy.host();
    let r = verified(&t, &host, certs.path()).await;
    let c = r.expect("docker.engine", "ok", "ok");
    let message = c["message"].as_str().unwrap();
    assert!(
        message.contains(&host) && message.contains("TLS"),
        "{message}"
    );
    let seen = proxy.assert_only_tls().await;
    assert!(
        seen.iter().any(|s| s.handshake.is_ok()),
        "no TLS handshake completed: {seen:?}"
    );

    // A context with a client certificate and SkipTLSVerify (no ca.pem): still TLS,
    // the engine's certificate taken unchecked, as the docker CLI does.
    let config = tempfile::tempdir().unwrap();
    context(
        config.path(),
        "skip",
        &host,
        true,
        &pki,
        &["cert.pem", "key.pem"],
    );
    let config_dir = config.path().display().to_string();
    let r = run_with(&t, &ENGINE_ONLY, &[("DOCKER_CONFIG", &config_dir)]).await;
    let c = r.expect("docker.engine", "ok", "ok");
    let message = c["message"].as_str().unwrap();
    assert!(
        message.contains("context skip") && message.contains("not verified"),
        "{message}"
    );
    proxy.assert_only_tls().await;
}

/// A docker CLI config folder whose current context `name` points at `host`, with these
/// TLS files of `pki` in the context's store.
fn context(dir: &Path, name: &str, host: &str, skip_verify: bool, pki: &Pki, files: &[&str]) {
    std::fs::write(
        dir.join("config.json"),
        serde_json::json!({"currentContext": name}).to_string(),
    )
    .unwrap();
    let digest = format!("{name}-digest");
    let meta = dir.join("contexts/meta").join(&digest);
    std::fs::create_dir_all(&meta).unwrap();
    let doc = serde_json::json!({"Name": name, "Metadata": {}, "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": skip_verify}}});
    std::fs::write(meta.join("meta.json"), doc.to_string()).unwrap();
    pki.write(
        &dir.join("contexts/tls").join(&digest).join("docker"),
        files,
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_certificates_fail_before_anything_is_sent() {
    let pki = make_pki("missing");
    let proxy = Proxy::start(&pki).await;
    let t = tree();
    let host = proxy.host();
    for (files, named) in [
        (&[][..], "ca.pem"),
        (&["ca.pem"][..], "cert.pem"),
        (&["ca.pem", "cert.pem"][..], "key.pem"),
    ] {
        let certs = pki.cert_dir(files);
        let r = verified(&t, &host, certs.path()).await;
        let c = r.expect("docker.engine", "fail", "tls");
        let message = c["message"].as_str().unwrap();
        assert!(
            message.contains(named) && message.contains("DOCKER_CERT_PATH"),
            "{files:?}: {message}"
        );
        assert!(
            c["hint"].as_str().unwrap().contains("DOCKER_CERT_PATH"),
            "{c}"
        );
    }
    // A plaintext request never left: nothing connected at all.
    let seen = proxy.seen().await;
    assert!(seen.is_empty(), "the proxy saw connections: {seen:?}");
}

/// Over TLS 1.3 an engine that refuses the client certificate may close the connection
/// before its alert is read: a connection that ends before any answer is reported as the
/// TLS refusal it is, whichever of the two comes first.
#[tokio::test(flavor = "multi_thread")]
async fn an_engine_that_closes_after_the_handshake_is_a_tls_failure() {
    let pki = make_pki("closes");
    let proxy = Proxy::start_with(&pki, false).await;
    let certs = pki.cert_dir(&["ca.pem", "cert.pem", "key.pem"]);
    let t = tree();
    let host = proxy.host();
    let r = verified(&t, &host, certs.path()).await;
    let c = r.expect("docker.engine", "fail", "tls");
    let message = c["message"].as_str().unwrap();
    assert!(
        message.contains("closed the connection before answering"),
        "{message}"
    );
    proxy.assert_only_tls().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn engine_refusing_the_client_fails_without_a_plain_retry() {
    let pki = make_pki("refused");
    let proxy = Proxy::start(&pki).await;
    let t = tree();
    let host = proxy.host();

    // A docker context with TLS material but no client certificate: the CLI dials TLS
    // without one, and the proxy refuses the handshake.
    let config = tempfile::tempdir().unwrap();
    context(config.path(), "remote", &host, false, &pki, &["ca.pem"]);
    let config_dir = config.path().display().to_string();
    let r = run_with(&t, &ENGINE_ONLY, &[("DOCKER_CONFIG", &config_dir)]).await;
    let c = r.expect("docker.engine", "fail", "tls");
    let message = c["message"].as_str().unwrap();
    assert!(message.contains("context remote"), "{message}");
    let seen = proxy.assert_only_tls().await;
    assert!(!seen.is_empty(), "pd-doctor never dialled the context");

    // The engine's certificate from a CA the client does not trust: refused by us.
    let stranger = make_pki("stranger");
    let certs = stranger.cert_dir(&["ca.pem", "cert.pem", "key.pem"]);
    let r = verified(&t, &host, certs.path()).await;
    let c = r.expect("docker.engine", "fail", "tls");
    assert!(
        c["message"].as_str().unwrap().contains("certificate"),
        "{c}"
    );
    let seen = proxy.assert_only_tls().await;
    assert!(
        seen.iter().all(|s| s.handshake.is_err()),
        "a handshake succeeded: {seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ssh_hosts_get_one_clear_line() {
    let t = tree();
    let host = format!("ssh://deploy@127.0.0.1:{}", free_port());
    let r = run_with(&t, &ENGINE_ONLY, &[("DOCKER_HOST", &host)]).await;
    let c = r.expect("docker.engine", "fail", "unsupported");
    let message = c["message"].as_str().unwrap();
    assert!(
        !message.contains('\n') && message.contains("ssh://"),
        "{message}"
    );
    assert!(c["hint"].as_str().unwrap().contains("ssh -"), "{c}");
    assert_eq!(r.code, 1);
    assert!(r.elapsed < Duration::from_secs(5), "{:?}", r.elapsed);
}

#[tokio::test(flavor = "multi_thread")]
async fn docker_host_secrets_never_reach_the_output() {
    let t = tree();
    t.agent("qa", "healthy");
    let port = free_port();
    let host = format!("tcp://user:s3cretpw@127.0.0.1:{port}?token=abc123secret");
    let ssh = format!("ssh://user:s3cretpw@127.0.0.1:{port}?token=abc123secret");
    let no_certs = tempfile::tempdir().unwrap();
    let no_certs = no_certs.path().display().to_string();
    type Env<'a> = Vec<(&'a str, &'a str)>;
    let cases: [(&str, Env, &str); 3] = [
        ("plain", vec![("DOCKER_HOST", &host)], "unreachable"),
        (
            "tls",
            vec![
                ("DOCKER_HOST", &host),
                ("DOCKER_TLS_VERIFY", "1"),
                ("DOCKER_CERT_PATH", &no_certs),
            ],
            "tls",
        ),
        ("ssh", vec![("DOCKER_HOST", &ssh)], "unsupported"),
    ];
    for (case, env, cause) in cases {
        for args in [
            &["--json", "--timeout", "1s"][..],
            &["--timeout", "1s"][..],
            &["--timeout", "1s", "--verbose", "--format", "junit"][..],
        ] {
            let r = run_with(&t, args, &env).await;
            for secret in ["s3cretpw", "abc123secret"] {
                assert!(
                    !r.stdout.contains(secret) && !r.stderr.contains(secret),
                    "{case} {args:?} printed {secret}:\n{}\n{}",
                    r.stdout,
                    r.stderr
                );
            }
            assert!(
                r.stdout.contains("[redacted]@127.0.0.1"),
                "{case}: {}",
                r.stdout
            );
            if args[0] == "--json" {
                r.expect("docker.engine", "fail", cause);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fifo_or_a_huge_cli_config_does_not_hang_the_run() {
    let t = tree();
    let config = tempfile::tempdir().unwrap();
    let fifo = |path: &Path| {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let ok = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mkfifo {}", path.display());
    };
    fifo(&config.path().join("config.json"));
    fifo(&config.path().join("contexts/meta/lab-digest/meta.json"));
    let config_dir = config.path().display().to_string();
    for env in [
        vec![("DOCKER_CONFIG", config_dir.as_str())],
        vec![
            ("DOCKER_CONFIG", config_dir.as_str()),
            ("DOCKER_CONTEXT", "lab"),
        ],
    ] {
        let r = tokio::time::timeout(
            Duration::from_secs(30),
            run_with(
                &t,
                &["--json", "--only", "docker.engine", "--timeout", "1s"],
                &env,
            ),
        )
        .await
        .expect("pd-doctor hung on a FIFO");
        r.check("docker.engine");
    }
    // Over 1 MiB: not read, so its currentContext is not followed.
    let big = tempfile::tempdir().unwrap();
    let mut text = " ".repeat(1024 * 1024);
    text.push_str(r#"{"currentContext": "huge"}"#);
    std::fs::write(big.path().join("config.json"), text).unwrap();
    let big_dir = big.path().display().to_string();
    let r = run_with(
        &t,
        &["--json", "--only", "docker.engine", "--timeout", "1s"],
        &[("DOCKER_CONFIG", &big_dir)],
    )
    .await;
    let c = r.check("docker.engine");
    assert!(!c["message"].as_str().unwrap().contains("huge"), "{c}");
}
