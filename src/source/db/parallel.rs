//! Parallel row checking: [`par_map`] runs a pure function over a slice on
//! up to one thread per core (validation dominates a large load).
//!
//! **Invariant**: results come back in the order of the items, whatever
//! the number of threads.

/// Below this many items per thread, [`par_map`] uses fewer threads.
const MIN_PER_THREAD: usize = 4096;

/// `f` over `items` on up to one thread per core, results in order.
pub fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let threads = cores.min(items.len() / MIN_PER_THREAD).max(1);
    if threads == 1 {
        return items.iter().map(f).collect();
    }
    let f = &f;
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|s| {
        let mut chunks = items.chunks(chunk);
        let first = chunks.next().unwrap_or_default();
        let handles: Vec<_> = chunks
            .map(|c| s.spawn(move || c.iter().map(f).collect::<Vec<R>>()))
            .collect();
        let mut out: Vec<R> = Vec::with_capacity(items.len());
        out.extend(first.iter().map(f));
        for h in handles {
            out.extend(h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn par_map_keeps_order_on_every_thread_count() {
        for n in [
            0,
            1,
            MIN_PER_THREAD - 1,
            MIN_PER_THREAD * 2 + 7,
            MIN_PER_THREAD * 5,
        ] {
            let items: Vec<usize> = (0..n).collect();
            let threads = std::sync::Mutex::new(std::collections::HashSet::new());
            let out = par_map(&items, |i| {
                threads.lock().unwrap().insert(std::thread::current().id());
                i * 3
            });
            assert_eq!(
                out,
                items.iter().map(|i| i * 3).collect::<Vec<_>>(),
                "n = {n}"
            );
            let cores = std::thread::available_parallelism().map_or(1, usize::from);
            let used = threads.lock().unwrap().len();
            if n >= 2 * MIN_PER_THREAD && cores > 1 {
                assert!(used > 1, "n = {n}: one thread");
            } else if n < MIN_PER_THREAD * 2 {
                assert!(used <= 1, "n = {n}: {used} threads");
            }
        }
    }
}
