//! The path a client's bytes take: pgwire's frame decoder, first as a connection's
//! opening (SSL request, startup, cancel) and then as messages of a logged-in
//! session, with the SQL of every Query and Parse handed to Tidemark's parser.
//!
//! pgwire 0.42.1 panics on some truncated messages (found by this target: an
//! Execute whose body ends inside its row limit, `fuzz/regressions/`). In the
//! server that panic ends only the connection's task — the regression test in
//! `crates/server/tests/server/hostile.rs` sends it to the real binary and checks
//! that everyone else is still served — so here a panic inside pgwire's decoder
//! counts as a closed connection, while a panic in Tidemark's code is a crash.
#![no_main]

use std::panic::{AssertUnwindSafe, catch_unwind};

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use pgwire::messages::{DecodeContext, PgWireFrontendMessage};

/// pgwire's decoder, with its panics turned into "the connection is closed".
fn decode(buf: &mut BytesMut, ctx: &DecodeContext) -> Option<PgWireFrontendMessage> {
    // libfuzzer-sys's hook aborts on any panic: stand it down for pgwire's code.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let decoded = catch_unwind(AssertUnwindSafe(|| PgWireFrontendMessage::decode(buf, ctx)));
    std::panic::set_hook(hook);
    decoded.ok()?.ok()?
}

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    let mut ctx = DecodeContext::default();
    // The opening: at most one startup-phase message, then the session.
    let _ = decode(&mut buf, &ctx);
    ctx.awaiting_frontend_ssl = false;
    ctx.awaiting_frontend_startup = false;
    for _ in 0..64 {
        match decode(&mut buf, &ctx) {
            Some(PgWireFrontendMessage::Query(q)) => {
                let _ = tidemark_parser::parse(&q.query);
            }
            Some(PgWireFrontendMessage::Parse(p)) => {
                let _ = tidemark_parser::parse(&p.query);
            }
            Some(_) => {}
            None => break,
        }
    }
});
