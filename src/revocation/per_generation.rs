//! One revocation service (a CRL publisher, an OCSP responder) per issuing CA generation,
//! kept in step with the daemon's [`Generations`] when a reload brings a new one.

use std::future::Future;
use std::sync::{Arc, RwLock};

use crate::ca::{CertificateAuthority, Generations};

/// A service that works for one issuing CA generation.
pub trait OfGeneration {
    /// The generation it works for.
    fn ca(&self) -> &Arc<CertificateAuthority>;
}

/// The services of the loaded generations, in the order of [`Generations::all`].
pub struct PerGeneration<T> {
    list: RwLock<Arc<Vec<Arc<T>>>>,
}

impl<T: OfGeneration> PerGeneration<T> {
    /// Holds `items`.
    pub fn new(items: Vec<Arc<T>>) -> Self {
        Self {
            list: RwLock::new(Arc::new(items)),
        }
    }

    /// Every service, the current generation's first.
    pub fn all(&self) -> Arc<Vec<Arc<T>>> {
        self.list
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The service of the generation whose key identifier is `key_id`.
    pub fn for_ca(&self, ca: &CertificateAuthority) -> Option<Arc<T>> {
        self.all()
            .iter()
            .find(|item| item.ca().key_id() == ca.key_id())
            .cloned()
    }

    /// The service of the generation whose ID is `id` (`/crl/<id>`).
    pub fn by_id(&self, id: &str) -> Option<Arc<T>> {
        self.all()
            .iter()
            .find(|item| item.ca().generation_id() == id)
            .cloned()
    }

    /// Makes the set that of `generations`: keeps the service of each generation it has,
    /// builds one with `make` for each new generation, and drops those of generations no
    /// longer loaded. Returns the services built and those dropped. On error nothing
    /// changes.
    pub async fn sync<F, Fut, E>(
        &self,
        generations: &Generations,
        mut make: F,
    ) -> Result<(Vec<Arc<T>>, Vec<Arc<T>>), E>
    where
        F: FnMut(Arc<CertificateAuthority>) -> Fut,
        Fut: Future<Output = Result<Arc<T>, E>>,
    {
        let old = self.all();
        let mut items = Vec::new();
        let mut built = Vec::new();
        for ca in generations.all() {
            match old.iter().find(|item| item.ca().key_id() == ca.key_id()) {
                Some(item) => items.push(item.clone()),
                None => {
                    let item = make(ca.clone()).await?;
                    built.push(item.clone());
                    items.push(item);
                }
            }
        }
        let dropped = old
            .iter()
            .filter(|item| !items.iter().any(|kept| Arc::ptr_eq(kept, item)))
            .cloned()
            .collect();
        *self
            .list
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(items);
        Ok((built, dropped))
    }
}
