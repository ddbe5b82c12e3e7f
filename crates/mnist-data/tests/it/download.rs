//! The download path against a real HTTP/1.1 server on 127.0.0.1 that the
//! test starts (std only), serving gzip files the test made.

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

use mnist_data::{Error, Expected, Progress, download_verified};
use tempfile::TempDir;

use crate::fixtures::{gz, images, labels, listing, sha256};

/// What the server answers for a path.
#[derive(Clone)]
pub enum Reply {
    /// 200 with this body.
    Ok(Vec<u8>),
    /// 200 announcing `len` bytes, then the body (shorter), then a dropped connection.
    Cut { body: Vec<u8>, len: usize },
    /// 404.
    NotFound,
}

/// A tiny HTTP/1.1 server on 127.0.0.1: one thread, one request per connection.
/// The thread lives until the test process ends.
pub struct Server {
    /// `http://127.0.0.1:<port>/`
    pub base: String,
}

impl Server {
    /// Serves `routes` (path without the leading `/`, reply); other paths get 404.
    pub fn start(routes: Vec<(&str, Reply)>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}/", listener.local_addr().unwrap());
        let routes: Vec<(String, Reply)> = routes
            .into_iter()
            .map(|(p, r)| (format!("/{p}"), r))
            .collect();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let routes = routes.clone();
                thread::spawn(move || serve(stream, &routes));
            }
        });
        Server { base }
    }
}

fn serve(mut stream: TcpStream, routes: &[(String, Reply)]) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    // Skip the headers.
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_owned();
    let reply = routes
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, r)| r.clone())
        .unwrap_or(Reply::NotFound);
    let (status, body, len) = match reply {
        Reply::Ok(b) => ("200 OK", b.clone(), b.len()),
        Reply::Cut { body, len } => ("200 OK", body, len),
        Reply::NotFound => ("404 Not Found", b"not found".to_vec(), 9),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/octet-stream\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body);
    let _ = stream.flush();
    let _ = stream.shutdown(Shutdown::Both);
}

/// Records what the download reports.
#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl Progress for Recorder {
    fn download_start(&self, _url: &str, total: Option<u64>) {
        self.0.lock().unwrap().push(format!("start {total:?}"));
    }
    fn download_progress(&self, received: u64) {
        self.0.lock().unwrap().push(format!("at {received}"));
    }
    fn download_end(&self) {
        self.0.lock().unwrap().push("end".into());
    }
}

fn expected<'a>(name: &'a str, raw: &[u8], sha: &'a str) -> Expected<'a> {
    Expected {
        name,
        sha256: sha,
        max_len: raw.len() as u64,
    }
}

#[test]
fn a_good_gzip_file_is_accepted_and_cached_raw() {
    let raw = images(40, 28, 28);
    let body = gz(&raw);
    let server = Server::start(vec![(
        "train-images-idx3-ubyte.gz",
        Reply::Ok(body.clone()),
    )]);
    let dir = TempDir::new().unwrap();
    let sha = sha256(&raw);
    let rec = Recorder::default();
    let url = format!("{}train-images-idx3-ubyte.gz", server.base);
    let path = download_verified(
        &url,
        &expected("train-images-idx3-ubyte", &raw, &sha),
        dir.path(),
        Some(&rec),
    )
    .unwrap();
    assert_eq!(path, dir.path().join("train-images-idx3-ubyte"));
    assert_eq!(std::fs::read(&path).unwrap(), raw);
    assert_eq!(
        listing(dir.path()),
        ["train-images-idx3-ubyte"],
        "no temporary file is left"
    );
    let events = rec.0.lock().unwrap();
    assert_eq!(
        events.first().unwrap(),
        &format!("start Some({})", body.len())
    );
    assert_eq!(events[events.len() - 2], format!("at {}", body.len()));
    assert_eq!(events.last().unwrap(), "end");
}

#[test]
fn an_uncompressed_body_is_accepted_too() {
    let raw = labels(30);
    let server = Server::start(vec![("l.gz", Reply::Ok(raw.clone()))]);
    let dir = TempDir::new().unwrap();
    let sha = sha256(&raw);
    let path = download_verified(
        &format!("{}l.gz", server.base),
        &expected("l", &raw, &sha),
        dir.path(),
        None,
    )
    .unwrap();
    assert_eq!(std::fs::read(path).unwrap(), raw);
}

#[test]
fn a_corrupted_file_is_rejected_and_nothing_is_cached() {
    let raw = images(40, 28, 28);
    let mut bad = raw.clone();
    bad[1000] ^= 1;
    let server = Server::start(vec![("x.gz", Reply::Ok(gz(&bad)))]);
    let dir = TempDir::new().unwrap();
    let sha = sha256(&raw);
    let url = format!("{}x.gz", server.base);
    let err = download_verified(&url, &expected("x", &raw, &sha), dir.path(), None).unwrap_err();
    assert!(
        matches!(&err, Error::Checksum { file, .. } if *file == url),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains(&format!("expected {sha}, got {}", sha256(&bad))),
        "{err}"
    );
    assert_eq!(
        listing(dir.path()),
        Vec::<String>::new(),
        "nothing at all is left behind"
    );
}

#[test]
fn a_connection_dropped_mid_file_leaves_nothing_behind() {
    let raw = images(200, 28, 28);
    let body = gz(&raw);
    let len = body.len();
    let server = Server::start(vec![(
        "x.gz",
        Reply::Cut {
            body: body[..len / 2].to_vec(),
            len,
        },
    )]);
    let dir = TempDir::new().unwrap();
    let sha = sha256(&raw);
    let url = format!("{}x.gz", server.base);
    let rec = Recorder::default();
    let err =
        download_verified(&url, &expected("x", &raw, &sha), dir.path(), Some(&rec)).unwrap_err();
    assert!(
        matches!(&err, Error::Download { reason, .. } if reason.starts_with("transfer failed")),
        "{err:?}"
    );
    assert!(err.to_string().starts_with(&url), "{err}");
    assert_eq!(listing(dir.path()), Vec::<String>::new());
    assert_eq!(
        rec.0.lock().unwrap().last().unwrap(),
        "end",
        "the progress bar is closed on failure"
    );
}

#[test]
fn a_corrupt_gzip_body_is_rejected_and_nothing_is_cached() {
    let raw = images(40, 28, 28);
    let mut body = gz(&raw);
    // Break the CRC-32 in the trailer: the content decodes, the check fails.
    let n = body.len();
    body[n - 8] ^= 0xff;
    let server = Server::start(vec![("x.gz", Reply::Ok(body))]);
    let dir = TempDir::new().unwrap();
    let sha = sha256(&raw);
    let err = download_verified(
        &format!("{}x.gz", server.base),
        &expected("x", &raw, &sha),
        dir.path(),
        None,
    )
    .unwrap_err();
    assert!(matches!(err, Error::Gzip { .. }), "{err:?}");
    assert_eq!(listing(dir.path()), Vec::<String>::new());
}

#[test]
fn a_body_larger_than_the_file_is_cut_off() {
    // A gzip bomb in miniature: 1 MB of zeros where at most 1,000 bytes may come.
    let server = Server::start(vec![("x.gz", Reply::Ok(gz(&vec![0u8; 1 << 20])))]);
    let dir = TempDir::new().unwrap();
    let exp = Expected {
        name: "x",
        sha256: "00",
        max_len: 1000,
    };
    let err =
        download_verified(&format!("{}x.gz", server.base), &exp, dir.path(), None).unwrap_err();
    assert!(
        matches!(err, Error::TooLarge { limit: 1000, .. }),
        "{err:?}"
    );
    assert_eq!(listing(dir.path()), Vec::<String>::new());
}

#[test]
fn an_http_error_status_is_reported() {
    let server = Server::start(vec![]);
    let dir = TempDir::new().unwrap();
    let url = format!("{}missing.gz", server.base);
    let err = download_verified(
        &url,
        &Expected {
            name: "m",
            sha256: "00",
            max_len: 10,
        },
        dir.path(),
        None,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{url}: server answered http status 404")
    );
    assert_eq!(listing(dir.path()), Vec::<String>::new());
}

#[test]
fn two_concurrent_downloads_of_one_file_both_succeed_and_leave_one_file() {
    let raw = images(300, 28, 28);
    let server = Server::start(vec![("x.gz", Reply::Ok(gz(&raw)))]);
    let dir = Arc::new(TempDir::new().unwrap());
    let sha = Arc::new(sha256(&raw));
    let len = raw.len() as u64;
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let (url, dir, sha) = (format!("{}x.gz", server.base), dir.clone(), sha.clone());
            thread::spawn(move || {
                download_verified(
                    &url,
                    &Expected {
                        name: "x",
                        sha256: &sha,
                        max_len: len,
                    },
                    dir.path(),
                    None,
                )
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap().unwrap();
    }
    assert_eq!(listing(dir.path()), ["x"]);
    assert_eq!(std::fs::read(dir.path().join("x")).unwrap(), raw);
}

/// Used by the `sources` tests: a server that serves fixture files (whose
/// digests are not the published ones) under all four MNIST names.
pub fn fixture_mirror() -> Server {
    Server::start(vec![
        (
            "train-images-idx3-ubyte.gz",
            Reply::Ok(gz(&images(5, 28, 28))),
        ),
        ("train-labels-idx1-ubyte.gz", Reply::Ok(gz(&labels(5)))),
        (
            "t10k-images-idx3-ubyte.gz",
            Reply::Ok(gz(&images(2, 28, 28))),
        ),
        ("t10k-labels-idx1-ubyte.gz", Reply::Ok(gz(&labels(2)))),
    ])
}
