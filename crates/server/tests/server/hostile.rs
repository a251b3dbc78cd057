//! Clients on raw sockets. Hostile ones: garbage bytes, truncated and oversized
//! messages, a startup without a user, a client that disconnects mid-query. Each such
//! connection gets an error or is closed; the server keeps serving everyone else, which
//! every case checks with a fresh, well-behaved connection. And a pipelining one: the
//! extended protocol's replies are sent at Sync or Flush, as PostgreSQL sends them.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::harness::Server;

/// How a hostile connection ended, as the client saw it.
#[derive(Debug, PartialEq)]
enum Ending {
    /// An ErrorResponse with this SQLSTATE (the server may close afterwards).
    Error(String),
    /// Closed (EOF or reset) without an error message.
    Closed,
    /// ReadyForQuery without an error: the server answered and waits for more.
    Ready,
}

fn open(server: &Server) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s
}

fn startup(user: Option<&str>) -> Vec<u8> {
    let mut body = 196_608_i32.to_be_bytes().to_vec(); // protocol 3.0
    if let Some(user) = user {
        body.extend_from_slice(b"user\0");
        body.extend_from_slice(user.as_bytes());
        body.push(0);
    }
    body.extend_from_slice(b"database\0tidemark\0\0");
    let mut msg = ((body.len() + 4) as i32).to_be_bytes().to_vec();
    msg.extend(body);
    msg
}

fn message(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut msg = vec![tag];
    msg.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    msg.extend_from_slice(body);
    msg
}

/// Reads one backend message: its tag and body; None at EOF or reset.
fn read_message(s: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut head = [0u8; 5];
    match s.read_exact(&mut head) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {
            panic!("the server neither answered nor closed within the read timeout")
        }
        Err(_) => return None,
    }
    let len = i32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    let mut body = vec![0u8; len.saturating_sub(4)];
    s.read_exact(&mut body).ok()?;
    Some((head[0], body))
}

/// The SQLSTATE field of an ErrorResponse body.
fn sqlstate(body: &[u8]) -> String {
    body.split(|b| *b == 0)
        .find_map(|f| f.strip_prefix(b"C"))
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .unwrap_or_default()
}

/// Reads until an ErrorResponse, a ReadyForQuery or the end of the connection.
fn ending(s: &mut TcpStream) -> Ending {
    while let Some((tag, body)) = read_message(s) {
        match tag {
            b'E' => return Ending::Error(sqlstate(&body)),
            b'Z' => return Ending::Ready,
            _ => {}
        }
    }
    Ending::Closed
}

/// Logs in with cleartext (the server under test is configured so) and waits for
/// ReadyForQuery.
fn logged_in(server: &Server) -> TcpStream {
    let mut s = open(server);
    s.write_all(&startup(Some("admin"))).expect("startup");
    let (tag, _) = read_message(&mut s).expect("auth request");
    assert_eq!(tag, b'R');
    s.write_all(&message(b'p', b"quest\0")).expect("password");
    loop {
        let (tag, body) = read_message(&mut s).expect("login");
        assert_ne!(tag, b'E', "login failed: {}", sqlstate(&body));
        if tag == b'Z' {
            return s;
        }
    }
}

/// A well-behaved client still gets answers.
fn still_serving(server: &Server) {
    let out = std::process::Command::new("psql")
        .arg(server.conninfo("quest"))
        .args(["-X", "-At", "-c", "SELECT 40 + 2"])
        .output()
        .expect("psql");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "42",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn hostile_clients_do_not_disturb_the_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[("TIDEMARK_AUTH_METHOD", "cleartext")]);

    // Garbage instead of a startup packet.
    let mut s = open(&server);
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let _ = s.write_all(&garbage);
    let end = ending(&mut s);
    assert!(matches!(end, Ending::Closed | Ending::Error(_)), "{end:?}");
    drop(s);
    still_serving(&server);

    // A startup packet claiming 2 GB.
    let mut s = open(&server);
    let _ = s.write_all(&0x7fff_fff0_i32.to_be_bytes());
    let _ = s.write_all(&196_608_i32.to_be_bytes());
    assert!(matches!(ending(&mut s), Ending::Closed | Ending::Error(_)));
    drop(s);
    still_serving(&server);

    // A truncated startup packet, then silence: the socket is held open by the
    // client, and other clients must not wait for it.
    let mut silent = open(&server);
    let _ = silent.write_all(&startup(Some("admin"))[..7]);
    still_serving(&server);

    // No user in the startup packet: FATAL 28000.
    let mut s = open(&server);
    s.write_all(&startup(None)).expect("startup");
    assert_eq!(ending(&mut s), Ending::Error("28000".into()));
    drop(s);
    still_serving(&server);

    // After login: an unknown message type.
    let mut s = logged_in(&server);
    let _ = s.write_all(&message(b'!', b"what is this"));
    let end = ending(&mut s);
    assert!(matches!(end, Ending::Closed | Ending::Error(_)), "{end:?}");
    drop(s);
    still_serving(&server);

    // After login: a Query claiming 1 GB, of which a few bytes arrive.
    let mut s = logged_in(&server);
    let _ = s.write_all(b"Q");
    let _ = s.write_all(&0x4000_0000_i32.to_be_bytes());
    let _ = s.write_all(b"SELECT 1");
    let end = ending(&mut s);
    assert!(matches!(end, Ending::Closed | Ending::Error(_)), "{end:?}");
    drop(s);
    still_serving(&server);

    // After login: a length below the minimum (a message is at least its length
    // field). pgwire reads it as an empty query and answers; it must not hang or fall over.
    let mut s = logged_in(&server);
    let _ = s.write_all(&[b'Q', 0, 0, 0, 2]);
    let _ = ending(&mut s);
    drop(s);
    still_serving(&server);

    // After login: an Execute whose body ends inside its row limit (found by the
    // pgwire_messages fuzz target; pgwire 0.42.1 panics decoding it). The
    // connection ends; the server and everyone else go on.
    let mut s = logged_in(&server);
    let _ = s.write_all(&[b'E', 0, 0, 0, 6, b'\n', 0]);
    let end = ending(&mut s);
    assert!(matches!(end, Ending::Closed | Ending::Error(_)), "{end:?}");
    drop(s);
    still_serving(&server);

    // After login: a Bind for a statement that does not exist: an error, and the
    // connection stays usable afterwards.
    let mut s = logged_in(&server);
    s.write_all(&message(b'B', b"\0no_such_statement\0\0\0\0\0\0\0"))
        .expect("bind");
    s.write_all(&message(b'S', b"")).expect("sync");
    assert_eq!(ending(&mut s), Ending::Error("26000".into()));
    assert_eq!(ending(&mut s), Ending::Ready, "Sync ends the failed batch");
    s.write_all(&message(b'Q', b"SELECT 7\0")).expect("query");
    let mut saw_row = false;
    loop {
        let (tag, _) = read_message(&mut s).expect("answer");
        saw_row |= tag == b'D';
        if tag == b'Z' {
            break;
        }
    }
    assert!(saw_row, "the connection still answers after a bad Bind");
    drop(s);

    // A client that sends a long query and disconnects before the answer.
    let mut s = logged_in(&server);
    s.write_all(&message(
        b'Q',
        b"SELECT count(*) FROM generate_series(1, 30000000) a\0",
    ))
    .expect("query");
    drop(s);
    still_serving(&server);

    // Many connections that open and vanish at once do not leak connection slots.
    for _ in 0..50 {
        let mut s = open(&server);
        let _ = s.write_all(&startup(Some("admin"))[..5]);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while open_connections(&server) > 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        open_connections(&server),
        1,
        "only the silent client is still connected"
    );
    still_serving(&server);
    drop(silent);
}

/// `tidemark_connections` (open client connections) from /metrics.
fn open_connections(server: &Server) -> u64 {
    let mut s = TcpStream::connect(("127.0.0.1", server.http_port)).expect("http");
    s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n")
        .expect("request");
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text.lines()
        .find_map(|l| l.strip_prefix("tidemark_connections "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(u64::MAX)
}

#[test]
fn extended_protocol_replies_wait_for_sync_or_flush() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[("TIDEMARK_AUTH_METHOD", "cleartext")]);
    let mut s = logged_in(&server);
    // Parse, Bind, Describe (portal) and Execute of SELECT 42, without Sync.
    let pipeline = [
        message(b'P', b"\0SELECT 42\0\0\0"),
        message(b'B', b"\0\0\0\0\0\0\0\0"),
        message(b'D', b"P\0"),
        message(b'E', b"\0\0\0\0\0"),
    ]
    .concat();
    s.write_all(&pipeline).expect("pipeline");
    // Like PostgreSQL, nothing is sent yet: a pipelined statement costs the
    // client one read, not one per message.
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let mut byte = [0u8; 1];
    match s.peek(&mut byte) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("a reply was sent before Sync or Flush: {other:?}"),
    }
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    // Flush sends everything queued, in order.
    s.write_all(&message(b'H', b"")).expect("flush");
    let tags: Vec<u8> = (0..5)
        .map(|_| read_message(&mut s).expect("reply").0)
        .collect();
    assert_eq!(
        String::from_utf8_lossy(&tags),
        "12TDC",
        "ParseComplete, BindComplete, RowDescription, DataRow, CommandComplete"
    );
    // Sync ends the pipeline with ReadyForQuery.
    s.write_all(&message(b'S', b"")).expect("sync");
    assert_eq!(read_message(&mut s).expect("ready").0, b'Z');
    // A whole pipeline with Sync is answered at once.
    s.write_all(&[pipeline, message(b'S', b"")].concat())
        .expect("pipeline");
    let tags: Vec<u8> = (0..6)
        .map(|_| read_message(&mut s).expect("reply").0)
        .collect();
    assert_eq!(String::from_utf8_lossy(&tags), "12TDCZ");
}
