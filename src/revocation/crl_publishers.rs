//! The CRL publishers of every loaded issuing CA generation: `/crl` is the current
//! generation's CRL, `/crl/<id>` each generation's (the URL its certificates carry).
//!
//! Each publisher runs its own background task ([`CrlPublisher::spawn`]); a reload that
//! brings a new generation starts one for it, and one that drops an expired generation
//! stops its task.

use std::sync::{Arc, Mutex};

use time::Duration;
use tokio::sync::watch;

use super::crl_publisher::{CrlNumbering, CrlPublisher, ResignThrottle};
use super::issuer_index::IssuerIndex;
use super::per_generation::{OfGeneration, PerGeneration};
use super::RevocationError;
use crate::ca::{CertificateAuthority, Generations};
use crate::ra::Clock;
use crate::store::RevocationStore;

impl OfGeneration for CrlPublisher {
    fn ca(&self) -> &Arc<CertificateAuthority> {
        CrlPublisher::ca(self)
    }
}

/// The background task of one publisher and how to stop it.
struct Task {
    key_id: Vec<u8>,
    stop: watch::Sender<bool>,
    handle: tokio::task::JoinHandle<()>,
}

/// The CRL publishers, one per generation.
pub struct CrlPublishers {
    store: Arc<dyn RevocationStore>,
    issuers: Arc<IssuerIndex>,
    numbering: Arc<CrlNumbering>,
    clock: Arc<dyn Clock>,
    interval: Duration,
    publishers: PerGeneration<CrlPublisher>,
    /// The tasks, once [`CrlPublishers::spawn`] started them.
    tasks: Mutex<Option<Vec<Task>>>,
}

impl CrlPublishers {
    /// Signs the first CRL of every generation `issuers` knows.
    pub async fn new(
        store: Arc<dyn RevocationStore>,
        issuers: Arc<IssuerIndex>,
        clock: Arc<dyn Clock>,
        interval: Duration,
    ) -> Result<Arc<Self>, RevocationError> {
        let set = Arc::new(Self {
            store,
            issuers,
            numbering: Arc::default(),
            clock,
            interval,
            publishers: PerGeneration::new(Vec::new()),
            tasks: Mutex::new(None),
        });
        set.sync(&set.issuers.cas().get()).await?;
        Ok(set)
    }

    /// The publisher of the current generation (`/crl`).
    pub fn current(&self) -> Result<Arc<CrlPublisher>, RevocationError> {
        let current = self.issuers.cas().current();
        self.publishers.for_ca(&current).ok_or_else(|| {
            RevocationError::Task(format!(
                "no CRL publisher for the current issuing CA {}",
                current.generation_id()
            ))
        })
    }

    /// The publisher of generation `id` (`/crl/<id>`), if it is loaded.
    pub fn by_id(&self, id: &str) -> Option<Arc<CrlPublisher>> {
        self.publishers.by_id(id)
    }

    /// Makes the publishers those of `generations`, signing the first CRL of each new one
    /// (and starting its task once they run), stopping those of generations dropped.
    pub async fn sync(&self, generations: &Generations) -> Result<(), RevocationError> {
        let (built, dropped) = self
            .publishers
            .sync(generations, |ca| {
                CrlPublisher::new(
                    self.store.clone(),
                    ca,
                    self.issuers.clone(),
                    self.numbering.clone(),
                    self.clock.clone(),
                    self.interval,
                    ResignThrottle::default(),
                )
            })
            .await?;
        let mut tasks = self.lock_tasks();
        if let Some(tasks) = tasks.as_mut() {
            for publisher in dropped {
                let key_id = publisher.ca().key_id();
                for task in tasks.iter().filter(|t| t.key_id == key_id) {
                    let _ = task.stop.send(true);
                }
            }
            tasks.extend(built.into_iter().map(start));
        }
        Ok(())
    }

    fn lock_tasks(&self) -> std::sync::MutexGuard<'_, Option<Vec<Task>>> {
        self.tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs every publisher's task, and those of generations a reload adds, until `stopped`
    /// changes; the handle ends when all of them have.
    pub fn spawn(
        self: Arc<Self>,
        mut stopped: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        *self.lock_tasks() = Some(self.publishers.all().iter().cloned().map(start).collect());
        tokio::spawn(async move {
            let _ = stopped.changed().await;
            let tasks = self.lock_tasks().take().unwrap_or_default();
            for task in &tasks {
                let _ = task.stop.send(true);
            }
            for task in tasks {
                let _ = task.handle.await;
            }
        })
    }
}

/// Starts the task of `publisher`.
fn start(publisher: Arc<CrlPublisher>) -> Task {
    let (stop, stopped) = watch::channel(false);
    Task {
        key_id: publisher.ca().key_id().to_vec(),
        stop,
        handle: publisher.spawn(stopped),
    }
}
