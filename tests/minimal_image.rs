//! The lab's minimal image (bash as /bin/sh, curl, cat, grep, getent, ls, sleep, touch,
//! rm, mkdir; no sha256sum, no cksum, no other coreutils): the one exec still answers
//! everything, the image's files come line by line, and no archive read is made.

mod common;

use common::lab::lab_or_skip;
use common::servers;
use common::{Run, Tree};

async fn diagnose_traced(t: &Tree) -> Run {
    let mut cmd = common::command(t.root(), &["--json", "--timeout", "5s"]);
    cmd.env("PD_DOCTOR_LOG", "debug");
    common::output(&mut cmd).await
}

fn archive_reads(run: &Run) -> usize {
    run.stderr
        .lines()
        .filter(|l| l.contains("/archive") && l.contains(": sent"))
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_minimal_image_is_judged_in_one_exec_without_an_archive_read() {
    let Some((lab, minimal)) = lab_or_skip("a_minimal_image", "minimal", "minimal") else {
        return;
    };
    let (qms, git) = servers::reachable_pair().await;
    let t = Tree::new(qms, git);
    for agent in ["claude", "qa"] {
        t.agent(agent, "healthy");
    }
    lab.configure(&t, "");
    for agent in ["claude", "qa"] {
        lab.start_agent(&t, agent, &minimal, &[]);
    }
    let run = diagnose_traced(&t).await;
    assert_eq!(run.code, 0, "{}", run.stdout);
    for agent in ["claude", "qa"] {
        run.expect(&format!("container.image[{agent}]"), "ok", "ok");
        run.expect(&format!("container.reach[{agent},qms]"), "ok", "ok");
    }
    assert_eq!(archive_reads(&run), 0, "{}", run.stderr);

    // The host's entrypoint edited after the build: seen from the lines alone.
    let entrypoint = std::fs::read_to_string(t.path("docker/entrypoint.sh")).unwrap();
    t.write(
        "docker/entrypoint.sh",
        &entrypoint.replacen('\n', "\n# edited on the host\n", 1),
    );
    let run = diagnose_traced(&t).await;
    for agent in ["claude", "qa"] {
        run.expect(
            &format!("container.image[{agent}]"),
            "fail",
            "entrypoint-differs",
        );
    }
    assert_eq!(archive_reads(&run), 0, "{}", run.stderr);
}
