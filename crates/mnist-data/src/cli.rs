//! Command-line helpers shared by the binaries (feature `cli`).

use std::sync::Mutex;

use report::{Progress as Bar_, Unit};

use crate::Progress;

/// Notes go to stderr; downloads get a byte progress bar on a terminal and a
/// plain line every few seconds elsewhere (see [`report::Progress`]).
#[derive(Default)]
pub struct Bar(Mutex<Option<Bar_>>);

impl Bar {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Bar_>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Progress for Bar {
    fn note(&self, msg: &str) {
        match &*self.lock() {
            Some(pb) => pb.println(msg),
            None => eprintln!("{msg}"),
        }
    }

    fn download_start(&self, url: &str, total: Option<u64>) {
        let template = match total {
            Some(_) => "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}",
            None => "{spinner} {bytes} {bytes_per_sec} {msg}",
        };
        let pb = Bar_::new("downloading", "", Unit::Bytes, total, template);
        pb.set_message(url.rsplit('/').next().unwrap_or(url));
        *self.lock() = Some(pb);
    }

    fn download_progress(&self, received: u64) {
        if let Some(pb) = &*self.lock() {
            pb.advance(received);
        }
    }

    fn download_end(&self) {
        if let Some(pb) = self.lock().take() {
            pb.finish();
        }
    }
}
