//! An open transaction's own view: the state it started from plus its writes.
//!
//! Each statement's requests are staged once, in memory, on a private copy of
//! the state (`ops::memory` with a private staging: dictionaries are copied
//! before the transaction adds to them, a table it creates exists only in its
//! view, nothing touches a file). A later statement stages only its own
//! requests. At COMMIT the requests are resolved again against the newest
//! state and committed as usual; the view is thrown away.
//!
//! Reads see other sessions' commits as of the view's base. A read that asks
//! for a fresh view ([`Database::transaction_snapshot`] with `fresh`) gets it
//! rebased on the newest state when others have committed since, staging every
//! request again (in memory only).

use std::sync::Arc;

use crate::catalog::Catalog;
use crate::db::{Database, Transaction};
use crate::error::Result;
use crate::ops::request::resolve;
use crate::ops::{Request, Staging, memory};
use crate::snapshot::{Pin, Snapshot};

/// The staged view of an open transaction.
#[derive(Debug, Clone)]
pub(crate) struct TxView {
    /// The base state with the transaction's requests staged on it.
    catalog: Arc<Catalog>,
    /// Keeps the base state's files from being reclaimed while the view lives.
    pin: Arc<Pin>,
}

impl Database {
    /// Adds `requests` to the open transaction `tx`, staging them on its view.
    /// A request that cannot be staged (an unknown table, a type mismatch) is
    /// refused here, and nothing of `requests` is added.
    pub fn stage(&self, tx: &mut Transaction, requests: Vec<Request>) -> Result<()> {
        if requests.is_empty() {
            return Ok(());
        }
        let view = match tx.view.take() {
            Some(v) => v,
            None => {
                let (catalog, pin) = self.inner.pin_published();
                TxView { catalog, pin }
            }
        };
        match self.stage_on(&view, &requests) {
            Ok(catalog) => {
                tx.view = Some(TxView {
                    catalog: Arc::new(catalog),
                    pin: view.pin,
                });
                tx.requests.extend(requests);
                Ok(())
            }
            Err(e) => {
                tx.view = Some(view);
                Err(e)
            }
        }
    }

    /// What `tx` sees: its base state with its own writes. With `fresh`, a view
    /// whose base is older than the newest state is rebased on it first (what a
    /// query inside a transaction reads: others' commits since, plus its own
    /// writes); the rebased view is not kept, since others keep committing.
    pub fn transaction_snapshot(&self, tx: &Transaction, fresh: bool) -> Result<Snapshot> {
        let Some(view) = tx.view.as_ref().filter(|_| !tx.requests.is_empty()) else {
            return Ok(self.snapshot());
        };
        if fresh && view.catalog.version != self.inner.group.published().version {
            let (catalog, pin) = self.inner.pin_published();
            let staged = self.stage_on(
                &TxView {
                    catalog,
                    pin: pin.clone(),
                },
                &tx.requests,
            )?;
            return Ok(Snapshot::new(
                Arc::new(staged),
                self.inner.mapped.clone(),
                pin,
            ));
        }
        Ok(Snapshot::new(
            view.catalog.clone(),
            self.inner.mapped.clone(),
            view.pin.clone(),
        ))
    }

    /// `requests` staged in memory on a private copy of `view`'s state.
    fn stage_on(&self, view: &TxView, requests: &[Request]) -> Result<Catalog> {
        let mut st = Staging::new(
            (*view.catalog).clone(),
            view.catalog.seq + 1,
            self.inner.root.db.clone(),
            &self.inner.mapped,
            self.inner.options.split_min_rows,
        );
        st.private = true;
        for r in requests {
            if let Some(op) = resolve(r.clone(), &mut st)? {
                memory::stage(op, &mut st)?;
            }
        }
        // The view keeps its base's seq and version: it pins exactly that state.
        let mut catalog = st.catalog;
        catalog.seq = view.catalog.seq;
        catalog.version = view.catalog.version;
        Ok(catalog)
    }
}
