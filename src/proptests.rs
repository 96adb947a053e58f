//! Property tests for every parser of outside data: config JSON of any shape, PID files,
//! each in-container client's output, the event-stream decoder and tar archives. On any
//! input: no panic, and the answer stays within its bounds.

use proptest::prelude::*;
use serde_json::Value;

use crate::causes::ReachCause;
use crate::claude_config::{self, JsonFile};
use crate::facts::docker::archive::first_tar_entry;
use crate::facts::docker::ExecOutput;
use crate::facts::http::event_data;
use crate::probes::docker::reach::{interpret, Answer};
use crate::redact::SecretSet;

/// JSON of any shape, a few levels deep, with the keys Claude Code's files use.
fn json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("mcpServers".to_string()),
        Just("projects".to_string()),
        Just("/pipe-dream".to_string()),
        Just("headers".to_string()),
        Just("url".to_string()),
        Just("type".to_string()),
        Just("env".to_string()),
        Just("qms".to_string()),
        "[a-zA-Z\\-]{0,8}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        ".{0,20}".prop_map(Value::String),
        Just(Value::String(
            "http://host.docker.internal:8000/mcp?k=v".into()
        )),
    ];
    leaf.prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..5)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn any_bytes_parse_to_a_verdict(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = claude_config::parse_json(&bytes);
    }

    #[test]
    fn any_json_shape_is_judged_without_panic(doc in json()) {
        let _ = claude_config::shape_problem(&doc, "/pipe-dream");
        for scope in [claude_config::user_scope(&doc), claude_config::local_scope(&doc, "/pipe-dream")] {
            for (_, entry) in claude_config::server_entries(scope) {
                let _ = entry.parsed_url();
                let _ = format!("{entry:?}");
            }
        }
        let secrets = SecretSet::default();
        claude_config::collect_secrets(&doc, &secrets);
        let text = serde_json::to_string(&doc).unwrap();
        prop_assert!(matches!(claude_config::parse_json(text.as_bytes()), JsonFile::Parsed(_)));
    }

    #[test]
    fn pid_files_give_a_pid_or_a_short_excerpt(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        match crate::facts::pidfile::parse(&bytes) {
            Ok(pid) => prop_assert!(pid > 0),
            Err(shown) => prop_assert!(shown.chars().count() <= 32),
        }
    }

    #[test]
    fn every_clients_output_becomes_an_answer(
        client in prop_oneof![Just("curl"), Just("wget"), Just("bash"), Just("node"), Just("python3")],
        stdout in ".{0,400}",
        stderr in ".{0,400}",
        code in prop::option::of(-1i64..300),
    ) {
        let out = ExecOutput { exit_code: code, stdout, stderr };
        match interpret(client, &out) {
            Answer::Status(_, body) => prop_assert!(body.chars().count() <= 600),
            Answer::Failed(kind, _) => prop_assert!([ReachCause::Dns, ReachCause::Refused, ReachCause::Timeout].contains(&kind)),
        }
    }

    #[test]
    fn the_event_stream_decoder_agrees_however_the_bytes_are_split(
        events in prop::collection::vec("[^\r\n]{0,12}", 1..6),
        crlf in any::<bool>(),
        cuts in prop::collection::vec(0usize..200, 0..8),
    ) {
        let nl = if crlf { "\r\n" } else { "\n" };
        let stream: String = events.iter().map(|e| format!("data: {e}{nl}{nl}")).collect();
        let bytes = stream.as_bytes();
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
        cuts.sort_unstable();
        let mut pieces = Vec::new();
        let mut at = 0;
        for cut in cuts.into_iter().chain([bytes.len()]) {
            pieces.push(bytes[at..cut].to_vec());
            at = cut;
        }
        let got = decode(pieces);
        prop_assert_eq!(got, events);
    }

    #[test]
    fn any_bytes_are_no_event_stream_crash(chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..8)) {
        let total: usize = chunks.iter().map(Vec::len).sum();
        for data in decode(chunks) {
            prop_assert!(data.len() <= total);
        }
    }

    #[test]
    fn any_tar_gives_an_entry_within_it_or_none(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        if let Some(entry) = first_tar_entry(&bytes) {
            prop_assert!(entry.len() <= bytes.len());
        }
    }
}

/// The data of every event the decoder gives for these chunks, up to its first error.
fn decode(chunks: Vec<Vec<u8>>) -> Vec<String> {
    let stream = futures::stream::iter(chunks.into_iter().map(Ok::<_, std::convert::Infallible>));
    futures::executor::block_on(futures::StreamExt::collect::<Vec<_>>(event_data(stream)))
        .into_iter()
        .map_while(Result::ok)
        .collect()
}

#[test]
fn a_multibyte_character_split_across_chunks_is_decoded_whole() {
    let bytes = "data: grüße\r\n\r\n".as_bytes();
    let split = bytes.iter().position(|b| *b == 0xc3).unwrap() + 1;
    let got = decode(vec![bytes[..split].to_vec(), bytes[split..].to_vec()]);
    assert_eq!(got, vec!["grüße".to_string()]);
}
