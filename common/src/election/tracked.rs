//! [`Tracked`]: a value that counts its mutable borrows, so that data derived from it (the
//! view and base digests, which every tally and every beat needs) can be cached until it may
//! have changed, instead of being recomputed from every peer on every use.

use std::ops::{Deref, DerefMut};

/// `T`, with a generation that moves on every mutable borrow (whether or not it changed
/// anything: a cache keyed on it is conservative, never stale).
#[derive(Debug, Default)]
pub(super) struct Tracked<T> {
    value: T,
    generation: u64,
}

impl<T> Tracked<T> {
    pub(super) fn new(value: T) -> Self {
        Tracked {
            value,
            generation: 0,
        }
    }

    /// Moves on whenever the value may have changed.
    pub(super) fn generation(&self) -> u64 {
        self.generation
    }
}

impl<T> Tracked<T> {
    /// A mutable borrow that does not move the generation: only for a change that leaves
    /// every value derived from `T` as it was (a cache keyed on the generation would go
    /// stale otherwise; the view cache checks itself in test builds).
    pub(super) fn untracked_mut(&mut self) -> &mut T {
        &mut self.value
    }

    /// [`Tracked::untracked_mut`] when `untracked` (the caller knows its change leaves every
    /// derived value as it was), else a tracked borrow that moves the generation.
    pub(super) fn borrow_mut_if_tracked(&mut self, untracked: bool) -> &mut T {
        if untracked {
            self.untracked_mut()
        } else {
            &mut *self
        }
    }
}

impl<T> Deref for Tracked<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> DerefMut for Tracked<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.generation = self.generation.wrapping_add(1);
        &mut self.value
    }
}

#[cfg(test)]
mod tests {
    use super::Tracked;

    #[test]
    fn a_mutable_borrow_moves_the_generation_and_a_shared_one_does_not() {
        let mut t = Tracked::new(vec![1]);
        let g = t.generation();
        assert_eq!(t.len(), 1);
        assert_eq!(t.generation(), g);
        t.push(2);
        assert_ne!(t.generation(), g);
        assert_eq!(*t, vec![1, 2]);
    }
}
