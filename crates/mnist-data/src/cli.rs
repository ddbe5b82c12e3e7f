//! Command-line helpers shared by the binaries (feature `cli`).

use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};

use crate::Progress;

/// Notes go to stderr; downloads get a byte progress bar (hidden when stderr
/// is not a terminal).
#[derive(Default)]
pub struct Bar(Mutex<Option<ProgressBar>>);

impl Progress for Bar {
    fn note(&self, msg: &str) {
        match &*self.0.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(pb) => pb.println(msg),
            None => eprintln!("{msg}"),
        }
    }

    fn download_start(&self, url: &str, total: Option<u64>) {
        let pb = match total {
            Some(n) => ProgressBar::new(n).with_style(
                ProgressStyle::with_template(
                    "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}",
                )
                .expect("a valid template"),
            ),
            None => ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{spinner} {bytes} {bytes_per_sec} {msg}")
                    .expect("a valid template"),
            ),
        };
        pb.set_message(url.rsplit('/').next().unwrap_or(url).to_owned());
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(pb);
    }

    fn download_progress(&self, received: u64) {
        if let Some(pb) = &*self.0.lock().unwrap_or_else(|e| e.into_inner()) {
            pb.set_position(received);
        }
    }

    fn download_end(&self) {
        if let Some(pb) = self.0.lock().unwrap_or_else(|e| e.into_inner()).take() {
            pb.finish_and_clear();
        }
    }
}
