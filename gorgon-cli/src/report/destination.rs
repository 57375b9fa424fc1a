//! Where one output file really goes, decided before the run.
//!
//! A report file is replaced atomically (a temporary file beside it, then a
//! rename), so a reader sees the old report or the new one, never half of
//! one. That is right for a regular file and wrong for everything else: a
//! rename over `/dev/full` or a FIFO replaces the device node or the pipe
//! with a plain file, and a rename over a symlink replaces the link instead
//! of the file it points to. So the kind of the destination is looked at
//! first: special files (devices, FIFOs, sockets, `/dev/stdout`) are
//! written through, in place; symlinks are followed to the file they name,
//! which is then replaced atomically; and a destination that is one of the
//! run's own inputs (the plugin, the config, a requests file) is refused,
//! since writing it would destroy what the run is made of.

use std::fs::{self, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// How many symlinks deep a destination may be, as the kernel's own limit
/// for path resolution (`ELOOP` beyond it).
const MAX_LINKS: usize = 40;

/// One output file, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// A regular file, existing or not, reached through any symlinks:
    /// replaced atomically.
    Replace(PathBuf),
    /// A device, FIFO, socket or terminal: opened and written in place, as
    /// `> path` in a shell would.
    WriteThrough(PathBuf),
}

impl Destination {
    /// Looks at what `path` names now. Nothing is created or changed.
    pub fn resolve(path: &Path) -> Result<Destination, String> {
        let shown = path.display();
        match fs::metadata(path) {
            Ok(meta) if meta.is_dir() => Err(format!("cannot write {shown}: it is a directory")),
            Ok(meta) if !meta.is_file() => {
                // Through the kernel's own resolution: `/dev/stdout` leads to
                // `/proc/self/fd/1`, whose link text (`pipe:[…]`) is no path.
                Ok(Destination::WriteThrough(path.to_path_buf()))
            }
            Ok(_) | Err(_) => {
                let target =
                    follow_links(path).map_err(|e| format!("cannot write {shown}: {e}"))?;
                check_directory(&target, path)?;
                Ok(Destination::Replace(target))
            }
        }
    }

    /// The file that will be written, for messages and comparisons.
    pub fn path(&self) -> &Path {
        match self {
            Destination::Replace(path) | Destination::WriteThrough(path) => path,
        }
    }

    /// Writes `bytes` to the destination. Every error is returned, a full
    /// disk (`ENOSPC`) or an I/O error (`EIO`) included: the caller turns
    /// it into a failed run, never a silent success.
    pub fn write(&self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Destination::Replace(path) => write_atomically(path, bytes),
            Destination::WriteThrough(path) => {
                // No O_TRUNC trouble here: devices and pipes ignore it, and it
                // is what a shell's `>` does.
                let mut file = OpenOptions::new().write(true).truncate(true).open(path)?;
                file.write_all(bytes)?;
                file.flush()
            }
        }
    }

    /// Whether this destination is the same file as `input` (same device and
    /// inode), however either is spelled. A destination that does not exist
    /// yet is no input.
    pub fn is_same_file(&self, input: &Path) -> bool {
        match (fs::metadata(self.path()), fs::metadata(input)) {
            (Ok(out), Ok(input)) => out.dev() == input.dev() && out.ino() == input.ino(),
            _ => false,
        }
    }
}

/// Refuses a destination that is one of the run's inputs, in one sentence
/// naming both the flag and what the file is.
pub fn refuse_inputs(
    flag: &str,
    destination: &Destination,
    inputs: &[(String, PathBuf)],
) -> Result<(), String> {
    for (what, input) in inputs {
        if destination.is_same_file(input) {
            return Err(format!(
                "{flag} {} is {what}: writing the report there would destroy it; name another file",
                destination.path().display()
            ));
        }
    }
    Ok(())
}

/// Follows `path` through symlinks to the file they finally name, which may
/// not exist yet (a dangling link names the file to create).
fn follow_links(path: &Path) -> io::Result<PathBuf> {
    let mut current = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = fs::read_link(&current)?;
                current = match target.is_absolute() {
                    true => target,
                    false => parent_of(&current).join(target),
                };
            }
            _ => return Ok(current),
        }
    }
    Err(io::Error::other(format!(
        "more than {MAX_LINKS} symbolic links deep"
    )))
}

/// The directory a file is written in ("." for a bare name).
fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Says in one sentence why a regular file could not be created at
/// `target` (reached from `asked`), without touching any file there.
fn check_directory(target: &Path, asked: &Path) -> Result<(), String> {
    let dir = parent_of(target);
    let shown = asked.display();
    if !dir.is_dir() {
        return Err(format!(
            "cannot write {shown}: the directory {} does not exist",
            dir.display()
        ));
    }
    // Creating and removing a temporary file is the one honest test that
    // the atomic write will work (permission bits do not tell for root,
    // read-only mounts or full quotas).
    temporary_in(dir)
        .map(drop)
        .map_err(|e| format!("cannot write {shown}: {e}"))
}

fn temporary_in(dir: &Path) -> io::Result<tempfile::NamedTempFile> {
    use std::os::unix::fs::PermissionsExt;
    tempfile::Builder::new()
        .prefix(".gorgon-")
        .suffix(".tmp")
        // Like any new file: 0666 less the umask, not tempfile's private 0600.
        .permissions(fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)
}

/// Replaces `path` with `bytes` so that a reader sees the old content or
/// the new, never a mixture: a temporary file in the same directory,
/// flushed to disk, then renamed over `path`.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = temporary_in(parent_of(path))?;
    file.write_all(bytes)?;
    file.as_file().sync_data()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, FileTypeExt};

    #[test]
    fn a_regular_file_is_replaced_and_no_temporary_file_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        let destination = Destination::resolve(&path).unwrap();
        assert_eq!(destination, Destination::Replace(path.clone()));
        destination.write(b"one").unwrap();
        destination.write(b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_symlink_is_followed_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.json");
        fs::write(&real, "old").unwrap();
        let link = dir.path().join("link.json");
        symlink("real.json", &link).unwrap();
        let destination = Destination::resolve(&link).unwrap();
        assert_eq!(
            destination,
            Destination::Replace(dir.path().join("real.json"))
        );
        destination.write(b"new").unwrap();
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read(&real).unwrap(), b"new");
    }

    #[test]
    fn a_dangling_symlink_names_the_file_to_create() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("link.json");
        symlink(dir.path().join("made.json"), &link).unwrap();
        let destination = Destination::resolve(&link).unwrap();
        destination.write(b"x").unwrap();
        assert_eq!(fs::read(dir.path().join("made.json")).unwrap(), b"x");
    }

    #[test]
    fn a_device_is_written_through_and_stays_a_device() {
        let destination = Destination::resolve(Path::new("/dev/null")).unwrap();
        assert_eq!(destination, Destination::WriteThrough("/dev/null".into()));
        destination.write(b"gone").unwrap();
        assert!(fs::metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device());
    }

    #[test]
    fn a_full_device_is_an_error_not_a_success() {
        let destination = Destination::resolve(Path::new("/dev/full")).unwrap();
        let error = destination.write(b"report").unwrap_err();
        assert_eq!(error.raw_os_error(), Some(nix::libc::ENOSPC));
    }

    #[test]
    fn a_fifo_is_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let destination = Destination::resolve(&fifo).unwrap();
        assert!(matches!(destination, Destination::WriteThrough(_)));
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || fs::read(fifo).unwrap())
        };
        destination.write(b"through the pipe").unwrap();
        assert_eq!(reader.join().unwrap(), b"through the pipe");
        assert!(fs::metadata(&fifo).unwrap().file_type().is_fifo());
    }

    #[test]
    fn an_input_is_refused_however_it_is_spelled() {
        let dir = tempfile::tempdir().unwrap();
        let plugin = dir.path().join("libp.so");
        fs::write(&plugin, "ELF").unwrap();
        let link = dir.path().join("alias.json");
        symlink(&plugin, &link).unwrap();
        let inputs = vec![("the plugin".to_string(), plugin.clone())];
        let destination = Destination::resolve(&link).unwrap();
        let error = refuse_inputs("--save", &destination, &inputs).unwrap_err();
        assert!(error.contains("is the plugin"), "{error}");
        let other = Destination::resolve(&dir.path().join("r.json")).unwrap();
        refuse_inputs("--save", &other, &inputs).unwrap();
        assert_eq!(fs::read(&plugin).unwrap(), b"ELF");
    }

    #[test]
    fn bad_destinations_are_told_in_one_sentence() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope/r.json");
        let error = Destination::resolve(&missing).unwrap_err();
        assert!(error.contains("does not exist"), "{error}");
        let error = Destination::resolve(dir.path()).unwrap_err();
        assert!(error.contains("is a directory"), "{error}");
    }
}
