//! The HTTP plugin on fibers (`--fibers N`): non-blocking sockets whose
//! waits go through the recorder, so one thread keeps N requests in
//! flight. The same results as with threads: exact counts, captures,
//! refused connections, timeouts.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Barrier};

use super::server::{closed_port, TestServer};
use super::{http, requests_file, ExampleApi, RequestsFile, CREATE_THEN_GET};
use crate::support::workspace;

#[test]
fn a_text_file_replays_on_fibers_with_exact_counts() {
    let server = TestServer::start();
    let file = requests_file("mod.http", "GET {{base}}/mod/5/{number}\n");
    let report = http(&file)
        .set("base", server.base())
        .args(["-n", "2000", "-p", "2", "-t", "2", "--fibers", "4"])
        .with_failed_calls()
        .json();
    assert_eq!(report.run().all.count, 2000);
    assert_eq!(
        report.run().labels(),
        BTreeMap::from([("200", 1600), ("500", 400)])
    );
    assert_eq!(server.seen().len(), 2000);
    // Each lane (2 processes × 2 threads × 4 fibers) keeps its own
    // connection alive, a 500 included.
    assert_eq!(server.connections(), 16);
}

/// A server that answers only when `lanes` requests wait at once: a
/// client that kept fewer in flight would get no answer at all.
fn answers_in_groups_of(lanes: usize) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let barrier = Arc::new(Barrier::new(lanes));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let barrier = barrier.clone();
            std::thread::spawn(move || answer_after(&barrier, &stream));
        }
    });
    port
}

fn answer_after(barrier: &Barrier, stream: &TcpStream) {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) if line == "\r\n" => {
                barrier.wait();
                let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                if (&*stream).write_all(reply).is_err() {
                    return;
                }
            }
            Ok(_) => {}
        }
    }
}

#[test]
fn one_thread_keeps_a_request_in_flight_on_every_fiber() {
    let port = answers_in_groups_of(4);
    let file = requests_file("one.http", &format!("GET http://127.0.0.1:{port}/\n"));
    let report = http(&file)
        .set("timeout_ms", 3000)
        .args(["-n", "4", "-p", "1", "-t", "1", "--fibers", "4"])
        .ok()
        .json();
    assert_eq!(report.run().labels(), BTreeMap::from([("200", 4)]));
}

#[test]
fn create_then_get_uses_the_captured_ids_on_fibers() {
    let server = TestServer::start();
    let file = requests_file("flow.http", CREATE_THEN_GET);
    let report = http(&file)
        .set("base", server.base())
        .args(["-n", "400", "-p", "2", "-t", "1", "--fibers", "8"])
        .ok()
        .json();
    assert_eq!(report.run().labels(), BTreeMap::from([("200", 400)]));
    assert_eq!(
        report.run().measured_names(),
        BTreeMap::from([("create", 400), ("get", 400), ("get by location", 400)])
    );
    let read: Vec<u64> = server
        .seen()
        .iter()
        .filter(|s| s.method == "GET")
        .map(|s| s.path.strip_prefix("/items/").unwrap().parse().unwrap())
        .collect();
    assert_eq!(read.len(), 800);
    // Every id read back is one created, and each twice (by id, by
    // location): no fiber read another's captures.
    let created: BTreeSet<u64> = (1000..1400).collect();
    assert_eq!(read.iter().copied().collect::<BTreeSet<_>>(), created);
}

#[test]
fn the_tutorial_flow_gives_the_same_counts_on_fibers_as_on_threads() {
    let api = ExampleApi::start();
    let file = RequestsFile {
        _dir: tempfile::tempdir().unwrap(),
        path: workspace().join("examples/requests/create-then-get.http"),
    };
    for lanes in [&["-t", "4"][..], &["-t", "1", "--fibers", "8"][..]] {
        let report = http(&file)
            .set("base", format!("http://127.0.0.1:{}", api.port))
            .args(["-n", "300", "-p", "2"])
            .args(lanes)
            .ok()
            .json();
        assert_eq!(report.run().all.count, 300, "{lanes:?}");
        assert_eq!(
            report.run().labels(),
            BTreeMap::from([("200", 300)]),
            "{lanes:?}"
        );
        assert_eq!(
            report.run().measured_names(),
            BTreeMap::from([("create", 300), ("get", 300)]),
            "{lanes:?}"
        );
    }
}

#[test]
fn refused_connections_are_counted_on_fibers() {
    let port = closed_port();
    let file = requests_file("one.http", &format!("GET http://127.0.0.1:{port}/\n"));
    let report = http(&file)
        .set("connect_at_start", false)
        .args(["-n", "40", "-p", "2", "-t", "1", "--fibers", "4"])
        .with_failed_calls()
        .json();
    assert_eq!(
        report.run().labels(),
        BTreeMap::from([("connect refused", 40)])
    );
}

#[test]
fn a_slow_response_is_a_timeout_on_fibers() {
    let server = TestServer::start();
    let file = requests_file("slow.http", &format!("GET {}/slow\n", server.base()));
    let report = http(&file)
        .set("timeout_ms", 200)
        .args(["-n", "8", "-p", "1", "-t", "1", "--fibers", "4"])
        .with_failed_calls()
        .json();
    assert_eq!(report.run().labels(), BTreeMap::from([("timeout", 8)]));
}
