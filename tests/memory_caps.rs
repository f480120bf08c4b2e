//! Caps on what input can make the program remember are bounded in bytes,
//! not only in entries: measured with a counting allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use e2e_aggregator::logging::{Once, ONCE_CAP};

/// The system allocator, counting the bytes live.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[test]
fn warn_once_memory_is_that_of_hashes_however_long_the_subjects() {
    // The cap's worth of subjects of 64 KiB each (640 MB if kept).
    let mut subject = vec![b'x'; 64 << 10];
    let mut once = Once::default();
    let before = LIVE.load(Ordering::Relaxed);
    for i in 0..ONCE_CAP {
        subject[..8].copy_from_slice(&(i as u64).to_le_bytes());
        assert!(once.first(&subject));
    }
    let held = LIVE.load(Ordering::Relaxed) - before;
    subject[..8].copy_from_slice(&7u64.to_le_bytes());
    assert!(!once.first(&subject), "a subject seen is remembered");
    eprintln!("warn-once memory at its cap of {ONCE_CAP} subjects: {held} bytes");
    assert!(held <= 256 * 1024, "{held} bytes held");
}
