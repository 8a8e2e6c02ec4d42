//! The admin socket's file: bound with its mode, a stale one left by a crash replaced, and
//! anything else at its path refused.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;

use tokio::net::UnixListener;

use super::{io_error, ServeError};

/// What a non-socket at `path` is, for the refusal to start: "a regular file", ….
fn describe_file(path: &Path, file_type: &std::fs::FileType) -> String {
    if file_type.is_symlink() {
        match std::fs::read_link(path) {
            Ok(target) => format!("a symbolic link to {}", target.display()),
            Err(_) => "a symbolic link".to_owned(),
        }
    } else if file_type.is_dir() {
        "a directory".to_owned()
    } else if file_type.is_file() {
        "a regular file".to_owned()
    } else if file_type.is_fifo() {
        "a named pipe".to_owned()
    } else if file_type.is_block_device() || file_type.is_char_device() {
        "a device".to_owned()
    } else {
        "something that is not a socket".to_owned()
    }
}

fn create_private_dir(path: &Path) -> Result<(), ServeError> {
    if path.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(path).map_err(io_error(format!("cannot create {}", path.display())))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).map_err(io_error(
        format!("cannot set the mode of {}", path.display()),
    ))
}

/// Binds the admin socket with `mode`, replacing a stale socket file left by a crash but
/// refusing to steal the socket of a daemon that is still running, and refusing to remove
/// anything at the path that is not a socket (a regular file, a directory, a symbolic link:
/// the path may be mistyped, or point at something that matters).
pub(super) async fn bind_admin_socket(path: &Path, mode: u32) -> Result<UnixListener, ServeError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_private_dir(parent)?;
    }
    // symlink_metadata: the link itself, never what it points at.
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(ServeError::Io {
                what: format!("cannot inspect the admin socket path {}", path.display()),
                source: e,
            })
        }
        Ok(found) if found.file_type().is_socket() => {
            if tokio::net::UnixStream::connect(path).await.is_ok() {
                return Err(ServeError::Other(format!(
                    "another estca is already serving the admin socket {}",
                    path.display()
                )));
            }
            std::fs::remove_file(path).map_err(io_error(format!(
                "cannot remove the stale socket {}",
                path.display()
            )))?;
        }
        Ok(found) => {
            return Err(ServeError::AdminSocketPathTaken {
                path: path.to_owned(),
                what: describe_file(path, &found.file_type()),
            })
        }
    }
    let listener = UnixListener::bind(path).map_err(io_error(format!(
        "cannot bind the admin socket {}",
        path.display()
    )))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io_error(
        format!("cannot set the mode of {}", path.display()),
    ))?;
    Ok(listener)
}
