//! Order-keeping parallel map for the CPU-bound part of a sync batch
//! (loading, merging, validating and screening Automerge documents, each
//! on its own), used by the hub's push and the laptop's pull.

/// Maps `f` over `items` on up to 4 threads (one below 64 items, where
/// threads cost more than they save), keeping the order.
pub fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    if threads < 2 || items.len() < 64 {
        return items.iter().map(&f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(|| part.iter().map(&f).collect::<Vec<_>>()))
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a merge thread panicked"))
            .collect()
    })
}

/// Whether no id repeats. A batch that names one document twice must be
/// merged one item at a time (the second must see the first's write), so
/// only a batch of distinct ids goes through [`par_map`].
pub fn all_distinct<T: Eq + std::hash::Hash>(ids: impl ExactSizeIterator<Item = T>) -> bool {
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    ids.into_iter().all(|id| seen.insert(id))
}
