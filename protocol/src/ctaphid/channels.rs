//! The channel identifiers handed out by CTAPHID_INIT on the broadcast channel (§11.2.9.1.3).
//!
//! The spec only asks for unique identifiers, so a counter does. The table remembers a bounded
//! number of them, so a flood of INITs costs no memory: the least recently used channel is
//! forgotten first, and its client learns it from ERR_INVALID_CHANNEL and allocates again.

use std::collections::VecDeque;

use super::packet::BROADCAST_CID;

/// How many allocated channels are remembered.
pub const MAX_CHANNELS: usize = 256;

/// 0 is reserved by the spec and the broadcast channel is never handed out.
const FIRST_CID: u32 = 1;

#[derive(Debug, Clone)]
pub(crate) struct ChannelTable {
    /// Least recently used first.
    recent: VecDeque<u32>,
    next_candidate: u32,
}

impl ChannelTable {
    pub fn new() -> Self {
        Self::starting_at(FIRST_CID)
    }

    fn starting_at(next_candidate: u32) -> Self {
        Self {
            recent: VecDeque::with_capacity(MAX_CHANNELS),
            next_candidate,
        }
    }

    /// A fresh channel, never 0, never the broadcast channel, never one still remembered.
    pub fn allocate(&mut self) -> u32 {
        // Terminates: the counter cycles through 2^32 - 2 values and at most MAX_CHANNELS of
        // them are remembered.
        loop {
            let candidate = self.next_candidate;
            self.next_candidate = match candidate.wrapping_add(1) {
                0 | BROADCAST_CID => FIRST_CID,
                next => next,
            };
            if candidate != 0 && candidate != BROADCAST_CID && !self.contains(candidate) {
                if self.recent.len() >= MAX_CHANNELS {
                    self.recent.pop_front();
                }
                self.recent.push_back(candidate);
                return candidate;
            }
        }
    }

    pub fn contains(&self, cid: u32) -> bool {
        self.recent.contains(&cid)
    }

    /// Marks a channel as just used, so that active clients are the last to be forgotten.
    pub fn touch(&mut self, cid: u32) {
        if let Some(position) = self.recent.iter().position(|&c| c == cid) {
            self.recent.remove(position);
            self.recent.push_back(cid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_distinct_channels_never_zero_nor_broadcast() {
        let mut table = ChannelTable::new();
        let cids: Vec<u32> = (0..MAX_CHANNELS).map(|_| table.allocate()).collect();
        let mut unique = cids.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), cids.len());
        assert!(cids.iter().all(|&c| c != 0 && c != BROADCAST_CID));
        assert!(cids.iter().all(|&c| table.contains(c)));
        assert!(!table.contains(0));
        assert!(!table.contains(BROADCAST_CID));
    }

    #[test]
    fn skips_zero_and_broadcast_when_the_counter_wraps() {
        let mut table = ChannelTable::starting_at(0xffff_fffd);
        assert_eq!(table.allocate(), 0xffff_fffd);
        assert_eq!(table.allocate(), 0xffff_fffe);
        assert_eq!(table.allocate(), 1);
    }

    #[test]
    fn skips_channels_still_in_use_after_wrapping() {
        let mut table = ChannelTable::new();
        assert_eq!(table.allocate(), 1);
        assert_eq!(table.allocate(), 2);
        table.next_candidate = 1;
        assert_eq!(table.allocate(), 3);
    }

    #[test]
    fn remembers_only_the_most_recent_channels() {
        let mut table = ChannelTable::new();
        let cids: Vec<u32> = (0..MAX_CHANNELS + 10).map(|_| table.allocate()).collect();
        assert_eq!(table.recent.len(), MAX_CHANNELS);
        assert!(cids[..10].iter().all(|&c| !table.contains(c)));
        assert!(cids[10..].iter().all(|&c| table.contains(c)));
    }

    #[test]
    fn a_touched_channel_outlives_newer_idle_ones() {
        let mut table = ChannelTable::new();
        let oldest = table.allocate();
        let second = table.allocate();
        table.touch(oldest);
        for _ in 0..MAX_CHANNELS - 1 {
            table.allocate();
        }
        assert!(table.contains(oldest));
        assert!(!table.contains(second));
    }
}
