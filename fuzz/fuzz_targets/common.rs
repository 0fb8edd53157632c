//! Shared by every target: panics that Outpost contains (`catch_unwind`
//! around Automerge's decoder) are the designed outcome, not crashes, so
//! the panic hook libfuzzer-sys installs (abort on any panic, caught or
//! not) is replaced by one that keeps a copy of the input for the
//! regression tests (`OUTPOST_FUZZ_PANICS=DIR`, at most 20 files) and lets
//! the unwind reach Outpost's `catch_unwind`. A panic nothing catches still
//! reaches libfuzzer-sys's own `catch_unwind`, which aborts: a crash.

use std::cell::RefCell;
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};

thread_local! {
    static INPUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

static KEPT: AtomicUsize = AtomicUsize::new(0);
static HOOK: Once = Once::new();

pub fn run(target: &str, data: &[u8], entry: fn(&[u8])) {
    let name = target.to_string();
    HOOK.call_once(move || {
        std::panic::set_hook(Box::new(move |_| {
            let Some(dir) = std::env::var_os("OUTPOST_FUZZ_PANICS") else {
                return;
            };
            let n = KEPT.fetch_add(1, Ordering::Relaxed);
            if n < 20 {
                let path = std::path::Path::new(&dir).join(format!("{name}-{n}"));
                INPUT.with(|i| {
                    let _ = std::fs::write(path, &*i.borrow());
                });
            }
        }));
    });
    INPUT.with(|i| {
        let mut i = i.borrow_mut();
        i.clear();
        i.extend_from_slice(data);
    });
    entry(data);
}
