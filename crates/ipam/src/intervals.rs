//! A set of integers kept as disjoint, non-adjacent inclusive intervals.
//!
//! The allocator's memory and time follow the number of runs of used addresses, not the size of
//! the pool: sequentially allocated addresses collapse into a single interval.

use std::collections::BTreeMap;

#[derive(Debug, Clone, Default)]
pub(crate) struct IntervalSet {
    /// start → end (inclusive); intervals never touch or overlap.
    runs: BTreeMap<u128, u128>,
}

impl IntervalSet {
    pub(crate) fn contains(&self, value: u128) -> bool {
        self.run_containing(value).is_some()
    }

    #[cfg(test)]
    pub(crate) fn runs_len(&self) -> usize {
        self.runs.len()
    }

    fn run_containing(&self, value: u128) -> Option<(u128, u128)> {
        let (&start, &end) = self.runs.range(..=value).next_back()?;
        (value <= end).then_some((start, end))
    }

    /// Adds `value`; returns false if it was already present.
    pub(crate) fn insert(&mut self, value: u128) -> bool {
        if self.contains(value) {
            return false;
        }
        let mut start = value;
        let mut end = value;
        if let Some(prev_end) = value.checked_sub(1).and_then(|p| self.run_containing(p)) {
            start = prev_end.0;
            self.runs.remove(&prev_end.0);
        }
        if let Some(next) = value.checked_add(1) {
            if let Some(next_end) = self.runs.remove(&next) {
                end = next_end;
            }
        }
        self.runs.insert(start, end);
        true
    }

    /// Removes `value`; returns false if it was not present.
    pub(crate) fn remove(&mut self, value: u128) -> bool {
        let Some((start, end)) = self.run_containing(value) else {
            return false;
        };
        self.runs.remove(&start);
        if start < value {
            self.runs.insert(start, value - 1);
        }
        if value < end {
            self.runs.insert(value + 1, end);
        }
        true
    }

    /// The lowest value in `[low, high]` that is not in the set.
    pub(crate) fn first_gap(&self, low: u128, high: u128) -> Option<u128> {
        let mut candidate = low;
        if let Some((_, end)) = self.run_containing(candidate) {
            candidate = end.checked_add(1)?;
        }
        (candidate <= high).then_some(candidate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_neighbours_and_splits_on_remove() {
        let mut set = IntervalSet::default();
        for v in [5, 7, 6, 4] {
            assert!(set.insert(v));
        }
        assert!(!set.insert(6));
        assert_eq!(set.runs.len(), 1);
        assert!((4..=7).all(|v| set.contains(v)));
        assert!(set.remove(6));
        assert_eq!(set.runs.len(), 2);
        assert!(!set.contains(6));
        assert!(set.contains(7));
        assert!(!set.remove(6));
    }

    #[test]
    fn first_gap_skips_the_run_at_the_start() {
        let mut set = IntervalSet::default();
        for v in 10..20 {
            set.insert(v);
        }
        assert_eq!(set.first_gap(10, 30), Some(20));
        assert_eq!(set.first_gap(0, 30), Some(0));
        assert_eq!(set.first_gap(10, 19), None);
        set.remove(15);
        assert_eq!(set.first_gap(10, 30), Some(15));
    }

    #[test]
    fn handles_the_ends_of_the_integer_range() {
        let mut set = IntervalSet::default();
        assert!(set.insert(u128::MAX));
        assert!(set.insert(0));
        assert_eq!(set.first_gap(u128::MAX, u128::MAX), None);
        assert_eq!(set.first_gap(0, 1), Some(1));
    }
}
