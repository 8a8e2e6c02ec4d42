//! The data directory and the CA directory are private to the user estca runs as.
//!
//! The database holds every password hash; the CA directory holds the CA's keys and the
//! certificates that say which CA this is. A directory that group or others can enter, read or
//! write gives them the hashes (or, writable, lets them swap the CA's files), so estca refuses
//! to use one — with a message naming the path, its mode and the `chmod` that fixes it — at
//! daemon start, `estca init` and `estca restore`, and refuses database files that group or
//! others may access, however they came to be so.
//!
//! A directory estca creates is made 0700. One that exists with group/other access but holds
//! nothing yet (empty, or for the CA directory only the repository's `README.md`, as `certs/`
//! is in a fresh clone) and that no one else may write is tightened to 0700 with a warning:
//! nothing secret was ever in it, and nobody else could have put anything there. One that
//! already holds a database or CA files, or that others may write, is refused: the operator
//! must decide what its exposure means (who may have copied the hashes or changed the files).

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::config::StoreBackend;

/// What a private directory holds, which decides the messages and what counts as "nothing yet".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holds {
    /// The data directory (`store.path`): the database, with every password hash.
    Database,
    /// The CA directory (`ca.dir`): the CA's keys and certificates.
    CaFiles,
}

impl Holds {
    fn describe(self) -> &'static str {
        match self {
            Holds::Database => "the data directory (store.path)",
            Holds::CaFiles => "the CA directory (ca.dir)",
        }
    }

    fn secret(self) -> &'static str {
        match self {
            Holds::Database => "the database, which holds every password hash",
            Holds::CaFiles => "the CA's files",
        }
    }

    /// Entries a directory may hold and still count as holding nothing yet.
    fn harmless(self, name: &std::ffi::OsStr) -> bool {
        match self {
            Holds::Database => false,
            Holds::CaFiles => name == "README.md",
        }
    }
}

/// Why a private directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PrivateDirError {
    /// A file system call failed.
    #[error("cannot use {}: {source}", .path.display())]
    Io {
        /// The path concerned.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// The path exists and is not a directory.
    #[error("{} is {}, and it is not a directory", .path.display(), .holds.describe())]
    NotADirectory {
        /// The path.
        path: PathBuf,
        /// Which directory it is meant to be.
        holds: Holds,
    },
    /// Group or others may access the directory or a database file.
    #[error("{} has mode {mode:04o}: users other than the one estca runs as can {access} {}; estca refuses to use it. Run `{fix}` (and consider who may have copied or changed it meanwhile)", .path.display(), .holds.secret())]
    Exposed {
        /// The directory or file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
        /// What it holds.
        holds: Holds,
        /// "read", "read or change", ...
        access: &'static str,
        /// The command that fixes it.
        fix: String,
    },
}

/// What [`prepare`] found or did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prepared {
    /// The directory was missing and was created with mode 0700.
    Created,
    /// It held nothing yet and was tightened from this mode to 0700.
    Tightened(u32),
    /// It was private already.
    Private,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PrivateDirError + '_ {
    move |source| PrivateDirError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn access(mode: u32) -> &'static str {
    if mode & 0o022 != 0 {
        "read or change"
    } else {
        "read"
    }
}

/// Makes sure `path` is a directory only its owner may access: creates it (0700) when
/// missing, tightens it when it holds nothing yet and nobody else may write it, refuses it
/// otherwise; for the data directory, also refuses database files that group or others may
/// access.
pub fn prepare(path: &Path, holds: Holds) -> Result<Prepared, PrivateDirError> {
    let metadata = match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(path)
                .map_err(io(path))?;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
                .map_err(io(path))?;
            return Ok(Prepared::Created);
        }
        other => other.map_err(io(path))?,
    };
    if !metadata.is_dir() {
        return Err(PrivateDirError::NotADirectory {
            path: path.to_path_buf(),
            holds,
        });
    }
    let mode = metadata.permissions().mode() & 0o7777;
    let mut prepared = Prepared::Private;
    if mode & 0o077 != 0 {
        let holds_nothing_yet = std::fs::read_dir(path)
            .map_err(io(path))?
            .map(|entry| entry.map(|e| holds.harmless(&e.file_name())))
            .collect::<Result<Vec<bool>, _>>()
            .map_err(io(path))?
            .into_iter()
            .all(|harmless| harmless);
        if mode & 0o022 != 0 || !holds_nothing_yet {
            return Err(PrivateDirError::Exposed {
                path: path.to_path_buf(),
                mode,
                holds,
                access: access(mode),
                fix: format!("chmod 700 {}", path.display()),
            });
        }
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).map_err(io(path))?;
        prepared = Prepared::Tightened(mode);
    }
    if holds == Holds::Database {
        for dir in [StoreBackend::Sled, StoreBackend::Fjall]
            .into_iter()
            .filter_map(StoreBackend::directory)
        {
            check_tree(&path.join(dir), path)?;
        }
    }
    Ok(prepared)
}

/// Refuses any file or directory under `tree` (the database) that group or others may access.
fn check_tree(tree: &Path, data_dir: &Path) -> Result<(), PrivateDirError> {
    let mut pending = vec![tree.to_path_buf()];
    while let Some(path) = pending.pop() {
        let metadata = match std::fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            other => other.map_err(io(&path))?,
        };
        let mode = metadata.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 && !metadata.file_type().is_symlink() {
            return Err(PrivateDirError::Exposed {
                path,
                mode,
                holds: Holds::Database,
                access: access(mode),
                fix: format!("chmod -R go-rwx {}", data_dir.display()),
            });
        }
        if metadata.is_dir() {
            for entry in std::fs::read_dir(&path).map_err(io(&path))? {
                pending.push(entry.map_err(io(&path))?.path());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_mode(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn a_missing_directory_is_created_private() {
        let base = tempfile::tempdir().unwrap();
        let data = base.path().join("a/b/data");
        assert_eq!(prepare(&data, Holds::Database).unwrap(), Prepared::Created);
        assert_eq!(mode(&data), 0o700);
        assert_eq!(prepare(&data, Holds::Database).unwrap(), Prepared::Private);
    }

    #[test]
    fn an_open_directory_holding_a_database_is_refused_with_the_fix() {
        let base = tempfile::tempdir().unwrap();
        let data = base.path().join("data");
        std::fs::create_dir_all(data.join("db")).unwrap();
        std::fs::write(data.join("db/conf"), b"x").unwrap();
        set_mode(&data, 0o755);
        let err = prepare(&data, Holds::Database).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("0755"), "{text}");
        assert!(
            text.contains(&format!("chmod 700 {}", data.display())),
            "{text}"
        );
        assert!(text.contains("password hash"), "{text}");
        assert_eq!(mode(&data), 0o755, "a refused directory is left as it was");

        // Private directory, but a database file others may read.
        set_mode(&data, 0o700);
        set_mode(&data.join("db"), 0o700);
        set_mode(&data.join("db/conf"), 0o644);
        let text = prepare(&data, Holds::Database).unwrap_err().to_string();
        assert!(text.contains("db/conf has mode 0644"), "{text}");
        assert!(text.contains("chmod -R go-rwx"), "{text}");
        set_mode(&data.join("db/conf"), 0o600);
        assert_eq!(prepare(&data, Holds::Database).unwrap(), Prepared::Private);

        // The fjall backend's directory is checked the same way.
        std::fs::create_dir_all(data.join("fjall/journals")).unwrap();
        std::fs::write(data.join("fjall/journals/0"), b"x").unwrap();
        set_mode(&data.join("fjall"), 0o700);
        set_mode(&data.join("fjall/journals"), 0o700);
        set_mode(&data.join("fjall/journals/0"), 0o640);
        let text = prepare(&data, Holds::Database).unwrap_err().to_string();
        assert!(text.contains("fjall/journals/0 has mode 0640"), "{text}");
    }

    #[test]
    fn an_empty_or_readme_only_directory_is_tightened_a_writable_one_refused() {
        let base = tempfile::tempdir().unwrap();
        let certs = base.path().join("certs");
        std::fs::create_dir(&certs).unwrap();
        std::fs::write(certs.join("README.md"), b"# certs/").unwrap();
        set_mode(&certs, 0o755);
        assert_eq!(
            prepare(&certs, Holds::CaFiles).unwrap(),
            Prepared::Tightened(0o755)
        );
        assert_eq!(mode(&certs), 0o700);

        // Holding a key already: refused.
        std::fs::write(certs.join("issuing-ca.key"), b"k").unwrap();
        set_mode(&certs, 0o750);
        let text = prepare(&certs, Holds::CaFiles).unwrap_err().to_string();
        assert!(
            text.contains("0750") && text.contains("CA's files"),
            "{text}"
        );

        // Writable by others, even empty: refused (someone may have put files there).
        let empty = base.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        set_mode(&empty, 0o777);
        let text = prepare(&empty, Holds::Database).unwrap_err().to_string();
        assert!(text.contains("read or change"), "{text}");
        set_mode(&empty, 0o755);
        assert_eq!(
            prepare(&empty, Holds::Database).unwrap(),
            Prepared::Tightened(0o755)
        );
    }
}
