//! Group commit: making WAL records durable and publishing committed states.
//!
//! Commits append their record to the WAL under the writer lock, queue their new
//! catalog here, and (in `sync` mode) wait until the WAL is fsynced past their
//! record. A blocking waiter that finds no sync running becomes the leader and
//! fsyncs once for everyone queued so far: concurrent committers share fsyncs.
//! An asynchronous waiter ([`GroupCommit::poll_durable`], what the server's
//! tasks use) registers its waker and asks the WAL sync thread to lead instead,
//! so no task blocks a thread of the async runtime on an fsync. A state becomes
//! visible to readers only once it is durable, so no reader ever sees a commit
//! that a crash could take back.

use std::collections::VecDeque;
use std::fs::File;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use parking_lot::{Condvar, Mutex, RwLock};

use crate::catalog::Catalog;
use crate::error::{Result, StorageError};

#[derive(Debug)]
struct Queue {
    synced_seq: u64,
    syncing: bool,
    pending: VecDeque<Arc<Catalog>>,
    /// The newest state an apply installed while commits in it were still
    /// waiting for their fsync: published once they all are durable (unless a
    /// later commit, whose state includes it, is published first).
    deferred: Option<Arc<Catalog>>,
    failure: Option<String>,
    /// The newest commit an asynchronous waiter waits for (the sync thread's work).
    requested_seq: u64,
    /// Asynchronous waiters: the commit each waits for, and how to wake it.
    wakers: Vec<(u64, Waker)>,
}

/// The newest WAL record written and the segment that holds it.
#[derive(Debug, Clone)]
pub(crate) struct WalTail {
    pub(crate) seq: u64,
    pub(crate) file: Arc<File>,
}

#[derive(Debug)]
pub(crate) struct GroupCommit {
    queue: Mutex<Queue>,
    synced: Condvar,
    /// Wakes the WAL sync thread when an asynchronous waiter asks for a sync.
    requested: Condvar,
    tail: Mutex<WalTail>,
    published: RwLock<Arc<Catalog>>,
    fsyncs: AtomicU64,
    fsync_micros: AtomicU64,
}

impl GroupCommit {
    pub(crate) fn new(catalog: Arc<Catalog>, tail: WalTail) -> Self {
        GroupCommit {
            queue: Mutex::new(Queue {
                synced_seq: catalog.seq,
                syncing: false,
                pending: VecDeque::new(),
                deferred: None,
                failure: None,
                requested_seq: 0,
                wakers: Vec::new(),
            }),
            synced: Condvar::new(),
            requested: Condvar::new(),
            tail: Mutex::new(tail),
            published: RwLock::new(catalog),
            fsyncs: AtomicU64::new(0),
            fsync_micros: AtomicU64::new(0),
        }
    }

    pub(crate) fn published(&self) -> Arc<Catalog> {
        self.published.read().clone()
    }

    /// (WAL fsyncs done, total microseconds spent in them).
    pub(crate) fn fsync_stats(&self) -> (u64, u64) {
        (
            self.fsyncs.load(Ordering::Relaxed),
            self.fsync_micros.load(Ordering::Relaxed),
        )
    }

    pub(crate) fn failure(&self) -> Option<String> {
        self.queue.lock().failure.clone()
    }

    pub(crate) fn synced_seq(&self) -> u64 {
        self.queue.lock().synced_seq
    }

    pub(crate) fn written_seq(&self) -> u64 {
        self.tail.lock().seq
    }

    /// Called under the writer lock after the record for `catalog.seq` was written.
    /// `visible_now` publishes at once (`async`/`nosync` modes).
    pub(crate) fn enqueue(&self, catalog: Arc<Catalog>, tail: WalTail, visible_now: bool) {
        let mut q = self.queue.lock();
        // A commit's state includes every apply installed before it.
        q.deferred = None;
        if visible_now {
            *self.published.write() = catalog;
        } else {
            q.pending.push_back(catalog);
        }
        drop(q);
        // After the queue: a leader that reads this tail finds the catalog queued.
        *self.tail.lock() = tail;
    }

    /// Blocks until the WAL is durable up to `seq` (fsyncing it if nobody else is).
    pub(crate) fn wait_durable(&self, seq: u64) -> Result<()> {
        let mut q = self.queue.lock();
        loop {
            if let Some(f) = &q.failure {
                return Err(StorageError::Poisoned(f.clone()));
            }
            if q.synced_seq >= seq {
                self.publish_synced(&mut q);
                return Ok(());
            }
            if q.syncing {
                self.synced.wait(&mut q);
                continue;
            }
            q.syncing = true;
            drop(q);
            let tail = self.tail.lock().clone();
            let started = std::time::Instant::now();
            let result = tail.file.sync_data();
            self.fsyncs.fetch_add(1, Ordering::Relaxed);
            self.fsync_micros
                .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
            q = self.queue.lock();
            q.syncing = false;
            match result {
                Ok(()) => {
                    q.synced_seq = q.synced_seq.max(tail.seq);
                    self.publish_synced(&mut q);
                }
                Err(e) => {
                    // After a failed fsync the kernel may have dropped the dirty pages:
                    // nothing written since can be trusted, so stop taking commits.
                    q.failure = Some(format!("WAL fsync failed: {e}"));
                    tracing::error!("WAL fsync failed, refusing further commits: {e}");
                }
            }
            self.synced.notify_all();
            // Wake the asynchronous waiters this sync served (or that must see the failure).
            let synced = q.synced_seq;
            let failed = q.failure.is_some();
            let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut q.wakers)
                .into_iter()
                .partition(|(s, _)| failed || *s <= synced);
            q.wakers = waiting;
            drop(q);
            for (_, w) in ready {
                w.wake();
            }
            q = self.queue.lock();
        }
    }

    /// The asynchronous form of [`GroupCommit::wait_durable`]: ready once the
    /// WAL is durable up to `seq`; until then the WAL sync thread is asked to
    /// sync and `cx`'s waker is kept to be woken when it has.
    pub(crate) fn poll_durable(&self, seq: u64, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let mut q = self.queue.lock();
        if let Some(f) = &q.failure {
            return Poll::Ready(Err(StorageError::Poisoned(f.clone())));
        }
        if q.synced_seq >= seq {
            self.publish_synced(&mut q);
            return Poll::Ready(Ok(()));
        }
        q.wakers.push((seq, cx.waker().clone()));
        if q.requested_seq < seq {
            q.requested_seq = seq;
            self.requested.notify_one();
        }
        Poll::Pending
    }

    /// The WAL sync thread's loop: fsyncs for asynchronous waiters as soon as
    /// they ask, until `stop` says to end (checked at least every 100 ms).
    pub(crate) fn serve_sync_requests(&self, stop: impl Fn() -> bool) {
        loop {
            let seq = {
                let mut q = self.queue.lock();
                while q.requested_seq <= q.synced_seq && q.failure.is_none() {
                    if stop() {
                        return;
                    }
                    self.requested.wait_for(&mut q, Duration::from_millis(100));
                }
                if q.failure.is_some() {
                    // Waiters were woken with the failure; nothing more to sync.
                    drop(q);
                    if stop() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
                q.requested_seq
            };
            if let Err(e) = self.wait_durable(seq) {
                tracing::error!("WAL sync for waiting commits failed: {e}");
            }
        }
    }

    /// Wakes every asynchronous waiter (shutdown: they then see the failure or
    /// the sync their commit needed).
    pub(crate) fn wake_all(&self) {
        let wakers = std::mem::take(&mut self.queue.lock().wakers);
        for (_, w) in wakers {
            w.wake();
        }
    }

    fn publish_synced(&self, q: &mut Queue) {
        let mut newest = None;
        while q.pending.front().is_some_and(|c| c.seq <= q.synced_seq) {
            newest = q.pending.pop_front();
        }
        if q.pending.is_empty()
            && let Some(applied) = q.deferred.take()
        {
            newest = Some(applied);
        }
        if let Some(c) = newest {
            *self.published.write() = c;
        }
    }

    /// Publishes `catalog`, a newer version of the newest commit's state (the
    /// apply moved rows to the files), unless commits are still waiting for
    /// their fsync: then it is published when the last of them is durable.
    pub(crate) fn publish_if_caught_up(&self, catalog: Arc<Catalog>) {
        let mut q = self.queue.lock();
        if q.pending.is_empty() {
            *self.published.write() = catalog;
        } else {
            q.deferred = Some(catalog);
        }
    }

    pub(crate) fn poison(&self, why: String) {
        self.queue.lock().failure = Some(why);
        self.synced.notify_all();
        self.requested.notify_all();
        self.wake_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(seq: u64, version: u64) -> Arc<Catalog> {
        let mut c = Catalog::default();
        c.seq = seq;
        c.version = version;
        Arc::new(c)
    }

    #[test]
    fn an_apply_installed_while_commits_wait_is_published_once_they_are_durable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = Arc::new(File::create(dir.path().join("wal")).expect("file"));
        let tail = |seq| WalTail {
            seq,
            file: file.clone(),
        };
        let group = GroupCommit::new(state(0, 0), tail(0));
        group.enqueue(state(1, 1), tail(1), false);
        // The apply's state holds commit 1, not durable yet: not published.
        group.publish_if_caught_up(state(1, 2));
        assert_eq!(group.published().version, 0);
        group.wait_durable(1).expect("sync");
        assert_eq!(
            group.published().version,
            2,
            "the applied state, not commit 1's"
        );

        // A commit after an apply carries the apply in its own state.
        group.enqueue(state(2, 3), tail(2), false);
        group.publish_if_caught_up(state(2, 4));
        group.enqueue(state(3, 5), tail(3), false);
        group.wait_durable(3).expect("sync");
        assert_eq!(group.published().version, 5);
    }
}
