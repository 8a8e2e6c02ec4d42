//! Writing a private file safely, in a directory that other users may share.
//!
//! A file that holds secrets (a backup holds every password hash) is written through a
//! temporary file that nobody else can have prepared: it is created with `O_EXCL` and
//! `O_NOFOLLOW` under a random name, mode 0600 from its creation, in the target's own
//! directory; it is written, `fsync`ed, renamed over the target in one step, and the directory
//! is `fsync`ed. Every step names the file relative to one open descriptor of the directory,
//! so the directory checked is the directory written.
//!
//! Refused, before anything is written: a target that is a symbolic link (renaming over it
//! would be harmless, but a link there means someone meant to redirect the file), a target
//! that is not a regular file, a directory that group or others may write unless it is sticky
//! (like `/tmp`, where only a file's owner may remove or replace it), and, in such a shared
//! sticky directory, a target that belongs to another user.

use std::ffi::OsString;
use std::fs::File;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rand_core::{OsRng, RngCore};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};

/// Why a private file could not be written. Messages name the path and say what to do.
#[derive(Debug, thiserror::Error)]
pub enum PrivateFileError {
    /// The target names no file (it ends in `/`, `.` or `..`).
    #[error("{} does not name a file: give a file name, e.g. DIR/estca.backup", .0.display())]
    NotAFileName(PathBuf),
    /// A system call failed.
    #[error("cannot write {}: {source}", .path.display())]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// The directory is writable by other users and not sticky.
    #[error("{} has mode {mode:04o}: other users may write there, so they could plant or swap files before or after estca writes {}; use a directory only you can write (or run `chmod go-w {}`), or a sticky one like /tmp", .dir.display(), .target.display(), .dir.display())]
    SharedDirectory {
        /// The directory.
        dir: PathBuf,
        /// The file that was to be written.
        target: PathBuf,
        /// The directory's permission bits.
        mode: u32,
    },
    /// The target is a symbolic link.
    #[error("{} is a symbolic link: estca writes a private file only in place of a regular file; remove the link (and check who made it) or choose another name", .0.display())]
    Symlink(PathBuf),
    /// The target exists and is not a regular file.
    #[error("{} exists and is not a regular file: choose another name", .0.display())]
    NotRegular(PathBuf),
    /// In a shared sticky directory, the target belongs to someone else.
    #[error("{} belongs to user {owner}, not to you, in a directory other users may write: someone else may have prepared it; remove it or choose another name", .path.display())]
    NotOurs {
        /// The target.
        path: PathBuf,
        /// Its owner's user ID.
        owner: u32,
    },
}

/// A private file being written: a temporary file beside the target, which becomes the target
/// on [`PrivateFile::commit`]; dropped without commit, it is removed and the target untouched.
#[derive(Debug)]
pub struct PrivateFile {
    dir: OwnedFd,
    dir_path: PathBuf,
    target: PathBuf,
    name: OsString,
    temp_name: OsString,
    file: Option<File>,
}

impl PrivateFile {
    /// Checks the directory and the target, and creates the temporary file (mode 0600).
    pub fn create(target: &Path) -> Result<Self, PrivateFileError> {
        let name = match target.file_name() {
            Some(n) if !target.as_os_str().as_encoded_bytes().ends_with(b"/") => n.to_owned(),
            _ => return Err(PrivateFileError::NotAFileName(target.to_path_buf())),
        };
        let dir_path = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |e: rustix::io::Errno| PrivateFileError::Io {
                path,
                source: e.into(),
            }
        };
        let dir = rustix::fs::open(
            &dir_path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(io(&dir_path))?;
        let dir_stat = rustix::fs::fstat(&dir).map_err(io(&dir_path))?;
        let dir_mode = dir_stat.st_mode & 0o7777;
        let shared = dir_mode & 0o022 != 0;
        if shared && dir_mode & 0o1000 == 0 {
            return Err(PrivateFileError::SharedDirectory {
                dir: dir_path,
                target: target.to_path_buf(),
                mode: dir_mode,
            });
        }
        match rustix::fs::statat(&dir, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Err(rustix::io::Errno::NOENT) => {}
            Err(e) => return Err(io(target)(e)),
            Ok(st) => match FileType::from_raw_mode(st.st_mode) {
                FileType::Symlink => return Err(PrivateFileError::Symlink(target.to_path_buf())),
                FileType::RegularFile => {
                    let me = rustix::process::geteuid().as_raw();
                    if shared && st.st_uid != me {
                        return Err(PrivateFileError::NotOurs {
                            path: target.to_path_buf(),
                            owner: st.st_uid,
                        });
                    }
                }
                _ => return Err(PrivateFileError::NotRegular(target.to_path_buf())),
            },
        }
        let mut random = [0u8; 16];
        OsRng.fill_bytes(&mut random);
        let temp_name = OsString::from(format!(".estca-{}.partial", hex::encode(random)));
        let fd = rustix::fs::openat(
            &dir,
            temp_name.as_os_str(),
            OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(io(&dir_path.join(&temp_name)))?;
        let file = File::from(fd);
        let made = Self {
            dir,
            dir_path,
            target: target.to_path_buf(),
            name,
            temp_name,
            file: Some(file),
        };
        // The mode asked at creation is reduced by the umask, never widened; say it exactly.
        if let Some(f) = &made.file {
            rustix::fs::fchmod(f, Mode::from_raw_mode(0o600)).map_err(io(&made.temp_path()))?;
        }
        Ok(made)
    }

    fn temp_path(&self) -> PathBuf {
        self.dir_path.join(&self.temp_name)
    }

    /// Flushes the data to disk, renames the temporary file over the target in one step and
    /// flushes the directory, so that after a crash the target is either the old file or the
    /// whole new one.
    pub fn commit(mut self) -> Result<(), PrivateFileError> {
        let target = self.target.clone();
        let io = |source: std::io::Error| PrivateFileError::Io {
            path: target.clone(),
            source,
        };
        if let Some(file) = self.file.take() {
            file.sync_all().map_err(io)?;
        }
        rustix::fs::renameat(
            &self.dir,
            self.temp_name.as_os_str(),
            &self.dir,
            self.name.as_os_str(),
        )
        .map_err(|e| io(e.into()))?;
        self.temp_name = OsString::new();
        rustix::fs::fsync(&self.dir).map_err(|e| io(e.into()))
    }

    /// What was written so far, read from the start (to check it before [`commit`]);
    /// writing after this goes on at the end.
    ///
    /// [`commit`]: PrivateFile::commit
    pub fn written(&mut self) -> std::io::Result<std::io::BufReader<&File>> {
        use std::io::Seek;
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| std::io::Error::other("the private file is already committed"))?;
        file.flush()?;
        file.rewind()?;
        Ok(std::io::BufReader::new(&*file))
    }

    /// The temporary file's name in the target's directory.
    #[cfg(test)]
    pub fn temporary_name(&self) -> &std::ffi::OsStr {
        &self.temp_name
    }
}

impl Write for PrivateFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &mut self.file {
            Some(f) => f.write(buf),
            None => Err(std::io::Error::other(
                "the private file is already committed",
            )),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.file {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for PrivateFile {
    fn drop(&mut self) {
        if !self.temp_name.is_empty() {
            let _ = rustix::fs::unlinkat(&self.dir, self.temp_name.as_os_str(), AtFlags::empty());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};

    use super::*;

    /// Writes `contents` to `target` as a private file, in one step.
    fn write(target: &Path, contents: &[u8]) -> Result<(), PrivateFileError> {
        let mut file = PrivateFile::create(target)?;
        file.write_all(contents)
            .map_err(|source| PrivateFileError::Io {
                path: target.to_path_buf(),
                source,
            })?;
        file.commit()
    }

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path)
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    }

    fn dir_with_mode(mode: u32) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(mode)).unwrap();
        dir
    }

    /// Only the target appears; it is 0600 and holds what was written.
    fn only_entry(dir: &Path) -> Vec<OsString> {
        let mut names: Vec<OsString> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn writes_mode_0600_and_replaces_an_existing_file_of_ours() {
        let dir = dir_with_mode(0o755);
        let target = dir.path().join("estca.backup");
        std::fs::write(&target, b"old").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
        write(&target, b"secret").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"secret");
        assert_eq!(mode(&target), 0o600);
        assert_eq!(only_entry(dir.path()), vec![OsString::from("estca.backup")]);
    }

    #[test]
    fn the_temporary_file_is_0600_from_creation_and_removed_when_not_committed() {
        let dir = dir_with_mode(0o700);
        let target = dir.path().join("b");
        let file = PrivateFile::create(&target).unwrap();
        let temp = dir.path().join(file.temporary_name());
        assert_eq!(mode(&temp), 0o600);
        assert_eq!(
            std::fs::metadata(&temp).unwrap().uid(),
            rustix::process::geteuid().as_raw()
        );
        drop(file);
        assert!(!temp.exists());
        assert!(!target.exists());
    }

    #[test]
    fn a_planted_partial_file_receives_nothing() {
        let dir = dir_with_mode(0o1777);
        let target = dir.path().join("estca.backup");
        // The name the old code used, opened by the "attacker" who keeps the descriptor.
        let planted = dir.path().join(".estca.backup.partial");
        std::fs::write(&planted, b"planted").unwrap();
        std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o666)).unwrap();
        let held = File::open(&planted).unwrap();
        write(&target, b"every password hash").unwrap();
        let mut seen = String::new();
        std::io::Read::read_to_string(&mut &held, &mut seen).unwrap();
        assert_eq!(seen, "planted");
        assert_eq!(std::fs::read(&target).unwrap(), b"every password hash");
    }

    #[test]
    fn a_symlink_is_never_followed_and_its_target_is_untouched() {
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let dir = dir_with_mode(0o1777);
        // A link at the target itself is refused.
        let target = dir.path().join("estca.backup");
        symlink(&victim, &target).unwrap();
        let err = write(&target, b"hashes").unwrap_err();
        assert!(matches!(err, PrivateFileError::Symlink(_)), "{err}");
        assert!(err.to_string().contains("symbolic link"), "{err}");
        // A link at the old partial name is not followed.
        let other = dir.path().join("other.backup");
        symlink(&victim, dir.path().join(".other.backup.partial")).unwrap();
        write(&other, b"hashes").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert_eq!(std::fs::read(&other).unwrap(), b"hashes");
        assert!(std::fs::symlink_metadata(&target)
            .unwrap()
            .file_type()
            .is_symlink());
    }

    #[test]
    fn a_directory_others_may_write_is_refused_unless_sticky() {
        for mode in [0o777, 0o775, 0o757] {
            let dir = dir_with_mode(mode);
            let target = dir.path().join("b");
            let err = write(&target, b"x").unwrap_err();
            assert!(
                matches!(err, PrivateFileError::SharedDirectory { .. }),
                "{mode:o}: {err}"
            );
            assert!(err.to_string().contains(&format!("{mode:04o}")), "{err}");
            assert!(only_entry(dir.path()).is_empty());
        }
        // Sticky like /tmp: allowed, and an existing file of ours is replaced.
        let dir = dir_with_mode(0o1777);
        write(&dir.path().join("b"), b"x").unwrap();
        write(&dir.path().join("b"), b"y").unwrap();
        assert_eq!(mode(&dir.path().join("b")), 0o600);
        // There, a file of another user's is refused (as root, a file is given away to try).
        if rustix::process::geteuid().is_root() {
            let theirs = dir.path().join("theirs");
            std::fs::write(&theirs, b"planted").unwrap();
            std::os::unix::fs::chown(&theirs, Some(65534), None).unwrap();
            let err = write(&theirs, b"x").unwrap_err();
            assert!(matches!(err, PrivateFileError::NotOurs { .. }), "{err}");
            assert_eq!(std::fs::read(&theirs).unwrap(), b"planted");
        }
    }

    #[test]
    fn a_name_that_is_no_file_or_not_regular_is_refused() {
        let dir = dir_with_mode(0o700);
        let err = write(&dir.path().join(".."), b"x").unwrap_err();
        assert!(matches!(err, PrivateFileError::NotAFileName(_)), "{err}");
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let err = write(&dir.path().join("sub"), b"x").unwrap_err();
        assert!(matches!(err, PrivateFileError::NotRegular(_)), "{err}");
    }
}
