//! The client against a scripted filter over an in-memory pipe: what it
//! sends, in which order, and what it makes of the answers.

use super::*;

const MESSAGE: &[u8] = b"From: a@remote.test\r\nSubject: hi\r\n there\r\n\r\nbody line\r\n";

fn conversation() -> Conversation<'static> {
    Conversation {
        client_name: "[192.0.2.1]",
        client_ip: Some("192.0.2.1".parse().unwrap()),
        helo: "mx.remote.test",
        mail_from: "a@remote.test",
        rcpt_to: vec!["b@example.test".into()],
        message: MESSAGE,
        hostname: "mx.example.test",
        queue_id: "q1",
    }
}

/// A filter that skips nothing, answers `c` to every step and `end` at the
/// end of the body; what it was sent, as `(command, data)`.
async fn scripted(
    protocol: u32,
    end: Vec<(u8, Vec<u8>)>,
) -> (Result<(Verdict, Changes), MilterError>, Vec<(u8, Vec<u8>)>) {
    let (client, mut server) = tokio::io::duplex(1 << 20);
    let filter = tokio::spawn(async move {
        let mut seen = Vec::new();
        loop {
            let Ok(p) = receive(&mut server).await else {
                break;
            };
            seen.push((p.command, p.data.clone()));
            match p.command {
                b'O' => {
                    let mut data = 6u32.to_be_bytes().to_vec();
                    data.extend_from_slice(&ACTIONS.to_be_bytes());
                    data.extend_from_slice(&protocol.to_be_bytes());
                    send(&mut server, b'O', &data).await.unwrap();
                }
                b'D' | b'Q' => {}
                b'E' => {
                    for (command, data) in &end {
                        send(&mut server, *command, data).await.unwrap();
                    }
                }
                b'L' if protocol & NR_HDR != 0 => {}
                _ => send(&mut server, b'c', &[]).await.unwrap(),
            }
        }
        seen
    });
    let c = conversation();
    let result = session(client, &c).await;
    (result, filter.await.unwrap())
}

#[tokio::test]
async fn the_whole_conversation_in_order_then_changes() {
    let mut change = 1u32.to_be_bytes().to_vec();
    change.extend_from_slice(b"Subject\0[SPAM] hi\0");
    let end = vec![
        (b'h', b"X-Spam\0Yes\0".to_vec()),
        (b'm', change),
        (b'a', vec![]),
    ];
    let (result, seen) = scripted(0, end).await;
    let (verdict, changes) = result.unwrap();
    assert_eq!(verdict, Verdict::Accept);
    let commands: String = seen.iter().map(|(c, _)| char::from(*c)).collect();
    assert_eq!(commands, "ODCHMRTLLNBEQ");
    let connect = &seen[2].1;
    assert!(connect.starts_with(b"[192.0.2.1]\x004"), "{connect:?}");
    assert!(connect.ends_with(b"192.0.2.1\0"));
    assert_eq!(seen[4].1, b"<a@remote.test>\0");
    // Header values without the space after the colon, folding kept.
    assert_eq!(seen[8].1, b"Subject\0hi\n there\0");
    assert_eq!(seen[10].1, b"body line\r\n");
    let changed = apply(MESSAGE, &changes);
    assert_eq!(
        String::from_utf8(changed).unwrap(),
        "From: a@remote.test\r\nSubject: [SPAM] hi\r\nX-Spam: Yes\r\n\r\nbody line\r\n"
    );
}

#[tokio::test]
async fn skipped_steps_are_not_sent_and_early_verdicts_end_it() {
    // No CONNECT, HELO, body; no replies to headers.
    let (result, seen) = scripted(NOCONNECT | NOHELO | NOBODY | NR_HDR, vec![(b't', vec![])]).await;
    let commands: String = seen.iter().map(|(c, _)| char::from(*c)).collect();
    assert_eq!(commands, "ODMRTLLNEQ");
    assert_eq!(
        result.unwrap().0,
        Verdict::Reject(
            451,
            "4.7.1".into(),
            "a filter asks to try again later".into()
        )
    );
}

#[test]
fn reply_codes() {
    assert_eq!(
        parse_replycode(b"554 5.7.1 Spam message rejected\0"),
        Verdict::Reject(554, "5.7.1".into(), "Spam message rejected".into())
    );
    assert_eq!(
        parse_replycode(b"451 try later\0"),
        Verdict::Reject(451, "4.7.1".into(), "try later".into())
    );
    // A 2xx "reply code" is not a way to accept: refused plainly.
    assert!(matches!(
        parse_replycode(b"250 ok\0"),
        Verdict::Reject(550, _, _)
    ));
    assert!(matches!(parse_replycode(b""), Verdict::Reject(550, _, _)));
}

#[test]
fn changes_insert_remove_and_replace_the_body() {
    let changes = Changes {
        insert: vec![(0, "X-First".into(), "1".into())],
        change: vec![(1, "From".into(), String::new())],
        body: Some(b"new body\r\n".to_vec()),
        ..Changes::default()
    };
    let changed = String::from_utf8(apply(MESSAGE, &changes)).unwrap();
    assert_eq!(
        changed,
        "X-First: 1\r\nSubject: hi\r\n there\r\n\r\nnew body\r\n"
    );
}
