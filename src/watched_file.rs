//! A small file that a hot path consults, kept in memory until it may have changed.
//!
//! The license file is read by `GET /api/licensing/check` whenever neither the database nor
//! the configuration holds a token, and a file dropped there (or rewritten, or removed)
//! must count from the next request on. Reading it per call costs a path walk and, in the
//! common case, a failing `openat`: about a tenth of the request. Modification times cannot
//! stand in for the read: the kernel stamps them at tick granularity, so two writes of the
//! same length within one tick would look alike.
//!
//! On Linux the file is watched with inotify instead: one watch on its folder (an entry
//! created, removed, renamed, written or changed in mode) and one on the file itself (a
//! write through another hard link or a bind mount). Every call asks the watch whether an
//! event is queued (one `ioctl`, no lock held across it) and, when one is, reads the file
//! again. The kernel queues an event before the writer's system call returns, so a change
//! that was made before a call began is always seen by that call (see [`WatchedFile::get`]
//! for why that holds with concurrent callers).
//!
//! The file is read on every call, as without a watch, where a watch could miss a change:
//! - no inotify (another system, or the per-user instance limit reached), or no folder;
//! - a folder on a filesystem that is not known to be local (NFS, SMB, FUSE, 9p: changes
//!   made by another machine raise no event here);
//! - a path that is a symbolic link, or anything but a regular file (its target can change
//!   without an event in the folder), or a folder above the file that is one;
//! - after the folder itself, or any folder above it, was moved, removed or unmounted: each
//!   folder above the file's (up to `/`, or up to the start of a relative path) has a watch
//!   of its own for just that, so that a folder renamed and another put in its place is
//!   seen. Those watches raise nothing while the folders stay where they are.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

/// The file's contents as a caller sees them: `Ok(None)` when it does not exist.
pub type Contents = io::Result<Option<String>>;

pub struct WatchedFile<T> {
    path: PathBuf,
    /// `None`: not watched, read on every call.
    watch: Option<watch::Watch>,
    /// The folder's watch ended: read on every call from now on.
    ended: AtomicBool,
    /// One caller at a time drains the watch and reads the file again.
    reload: Mutex<()>,
    /// What the last read made; `None` while a reload runs and whenever the file is not
    /// watched. Its lock is held only to swap or clone the `Arc`.
    value: Mutex<Option<Arc<T>>>,
}

impl<T> WatchedFile<T> {
    pub fn new(path: PathBuf) -> Self {
        let watch = match watch::Watch::folder_of(&path) {
            Ok(w) => Some(w),
            Err(reason) => {
                tracing::debug!(path = %path.display(), %reason, "file not watched; read on every use");
                None
            }
        };
        Self {
            path,
            watch,
            ended: AtomicBool::new(false),
            reload: Mutex::new(()),
            value: Mutex::new(None),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file is watched (else it is read on every call).
    pub fn is_watched(&self) -> bool {
        self.watch.is_some() && !self.ended.load(Ordering::Acquire)
    }

    /// What `make` makes of the file's contents, made again only when the file may have
    /// changed since the last call (on every call when it is not watched).
    ///
    /// The common call takes no lock across a system call: it asks whether an event is
    /// queued (`FIONREAD`, which consumes nothing), then clones the kept value. Events
    /// are drained only by a reload, which empties the kept value *before* it drains, so
    /// a caller that finds the queue empty because a reload drained it finds no value
    /// either (or the one that reload read after draining) and waits for the reload.
    pub fn get(&self, make: impl FnOnce(Contents) -> T) -> Arc<T> {
        let Some(watch) = self.watch.as_ref().filter(|_| self.is_watched()) else {
            return Arc::new(make(read(&self.path)));
        };
        if watch.quiet() {
            if let Some(v) = self.value.lock().clone() {
                return v;
            }
        }
        let _reload = self.reload.lock();
        if watch.quiet() {
            // Another caller reloaded while this one waited.
            if let Some(v) = self.value.lock().clone() {
                return v;
            }
        }
        *self.value.lock() = None;
        let keep = match watch.drain() {
            watch::Drained::Ended => {
                tracing::warn!(
                    path = %self.path.display(),
                    "the file's folder was moved or removed; the file is now read on every use"
                );
                self.ended.store(true, Ordering::Release);
                false
            }
            // The file's own watch goes on before the read, so that a write after the
            // read raises an event.
            watch::Drained::Drained => watch.arm_file(&self.path),
        };
        let value = Arc::new(make(read(&self.path)));
        if keep {
            *self.value.lock() = Some(value.clone());
        }
        value
    }
}

fn read(path: &Path) -> Contents {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(target_os = "linux")]
mod watch {
    use std::mem::MaybeUninit;
    use std::path::{Component, Path};

    use rustix::fd::OwnedFd;
    use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};
    use rustix::io::Errno;

    /// Filesystems whose changes all pass through this kernel (`f_type` of `statfs`):
    /// ext2-4, XFS, Btrfs, tmpfs, overlayfs, ZFS, F2FS, ramfs, bcachefs.
    const LOCAL: [u32; 9] = [
        0xEF53,
        0x5846_5342,
        0x9123_683E,
        0x0102_1994,
        0x794C_7630,
        0x2FC1_2FC1,
        0xF2F5_2010,
        0x8584_58F6,
        0xCA45_1A4E,
    ];

    pub struct Watch {
        fd: OwnedFd,
        folder: i32,
        /// The folders above `folder`: moved or removed, the path names another file.
        above: Vec<i32>,
    }

    pub enum Drained {
        /// Every queued event was read.
        Drained,
        /// The folder's watch is gone: nothing more will be reported.
        Ended,
    }

    impl Watch {
        pub fn folder_of(path: &Path) -> Result<Self, String> {
            let folder = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            let fs = rustix::fs::statfs(folder).map_err(|e| format!("statfs: {e}"))?;
            // `f_type`'s width differs by target; the magic numbers are 32 bits.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let kind = fs.f_type as u32;
            if !LOCAL.contains(&kind) {
                return Err(format!("filesystem {kind:#x} is not known to be local"));
            }
            let fd = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)
                .map_err(|e| format!("inotify: {e}"))?;
            let wd = inotify::add_watch(
                &fd,
                folder,
                WatchFlags::CREATE
                    | WatchFlags::DELETE
                    | WatchFlags::MOVE
                    | WatchFlags::MODIFY
                    | WatchFlags::CLOSE_WRITE
                    | WatchFlags::ATTRIB
                    | WatchFlags::DELETE_SELF
                    | WatchFlags::MOVE_SELF
                    | WatchFlags::ONLYDIR,
            )
            .map_err(|e| format!("inotify watch: {e}"))?;
            let above = watch_above(&fd, folder)?;
            Ok(Self {
                fd,
                folder: wd,
                above,
            })
        }

        /// Whether no event is queued (asks without reading one).
        pub fn quiet(&self) -> bool {
            rustix::io::ioctl_fionread(&self.fd).is_ok_and(|n| n == 0)
        }

        /// Reads every queued event without blocking.
        pub fn drain(&self) -> Drained {
            let mut buf = [MaybeUninit::<u8>::uninit(); 1024];
            let mut events = inotify::Reader::new(&self.fd, &mut buf);
            let gone = ReadFlags::IGNORED
                | ReadFlags::UNMOUNT
                | ReadFlags::DELETE_SELF
                | ReadFlags::MOVE_SELF;
            loop {
                match events.next() {
                    Ok(e)
                        if (e.wd() == self.folder || self.above.contains(&e.wd()))
                            && e.events().intersects(gone) =>
                    {
                        return Drained::Ended;
                    }
                    Ok(_) | Err(Errno::INTR) => {}
                    Err(Errno::AGAIN) => return Drained::Drained,
                    // The watch cannot be trusted any more.
                    Err(_) => return Drained::Ended,
                }
            }
        }

        /// Watches the file itself, when there is one; whether what is read next may be
        /// kept (absent, or a regular file now watched).
        pub fn arm_file(&self, path: &Path) -> bool {
            match std::fs::symlink_metadata(path) {
                Err(e) => e.kind() == std::io::ErrorKind::NotFound,
                Ok(m) if m.file_type().is_file() => inotify::add_watch(
                    &self.fd,
                    path,
                    WatchFlags::MODIFY
                        | WatchFlags::CLOSE_WRITE
                        | WatchFlags::ATTRIB
                        | WatchFlags::DONT_FOLLOW,
                )
                .is_ok(),
                Ok(_) => false,
            }
        }
    }

    /// A watch on each folder above `folder` that its path names (a relative path's `.` and
    /// `..` stay where the process is), for its move or removal only. Refused when `folder`
    /// or one of them is a symbolic link, which can be pointed elsewhere without an event.
    fn watch_above(fd: &OwnedFd, folder: &Path) -> Result<Vec<i32>, String> {
        let mut above = Vec::new();
        for dir in folder.ancestors() {
            if !matches!(dir.components().next_back(), Some(Component::Normal(_))) {
                continue;
            }
            let meta =
                std::fs::symlink_metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            if meta.file_type().is_symlink() {
                return Err(format!("{} is a symbolic link", dir.display()));
            }
            if dir == folder {
                continue; // watched for more already
            }
            // Added to, not replacing, a watch the same folder may already have (a path
            // through `..` can name it twice).
            let wd = inotify::add_watch(
                fd,
                dir,
                WatchFlags::DELETE_SELF
                    | WatchFlags::MOVE_SELF
                    | WatchFlags::ONLYDIR
                    | WatchFlags::MASK_ADD,
            )
            .map_err(|e| format!("inotify watch of {}: {e}", dir.display()))?;
            above.push(wd);
        }
        Ok(above)
    }
}

#[cfg(not(target_os = "linux"))]
mod watch {
    use std::path::Path;

    pub struct Watch;

    pub enum Drained {
        Drained,
        Ended,
    }

    impl Watch {
        pub fn folder_of(_: &Path) -> Result<Self, String> {
            Err("no inotify on this system".into())
        }
        pub fn quiet(&self) -> bool {
            false
        }
        pub fn drain(&self) -> Drained {
            Drained::Ended
        }
        pub fn arm_file(&self, _: &Path) -> bool {
            false
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A watched file whose reads are counted.
    struct Counted {
        file: WatchedFile<Option<String>>,
        reads: AtomicUsize,
    }

    impl Counted {
        fn new(path: PathBuf) -> Self {
            let file = WatchedFile::new(path);
            assert!(
                file.is_watched(),
                "a temporary folder on a local filesystem"
            );
            Self {
                file,
                reads: AtomicUsize::new(0),
            }
        }

        fn get(&self) -> Option<String> {
            let v = self.file.get(|c| {
                self.reads.fetch_add(1, Ordering::Relaxed);
                c.unwrap()
            });
            (*v).clone()
        }

        fn reads(&self) -> usize {
            self.reads.load(Ordering::Relaxed)
        }
    }

    #[test]
    fn an_unchanged_file_is_read_once() {
        let dir = tempfile::tempdir().unwrap();
        let f = Counted::new(dir.path().join("license.jwt"));
        for _ in 0..5 {
            assert_eq!(f.get(), None);
        }
        assert_eq!(f.reads(), 1, "absent: read once");
        std::fs::write(f.file.path(), "a").unwrap();
        for _ in 0..5 {
            assert_eq!(f.get().as_deref(), Some("a"));
        }
        assert_eq!(f.reads(), 2, "written: read once more");
        // A file elsewhere in the folder changes nothing we serve, only costs a read.
        std::fs::write(dir.path().join("other"), "x").unwrap();
        assert_eq!(f.get().as_deref(), Some("a"));
    }

    #[test]
    fn every_change_counts_from_the_next_call() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("license.jwt");
        let f = Counted::new(path.clone());
        // Same-length rewrites, back to back: within one clock tick, so a modification
        // time would not tell them apart.
        for round in 0..200 {
            let text = format!("{:04}", round);
            std::fs::write(&path, &text).unwrap();
            assert_eq!(f.get(), Some(text), "round {round}");
        }
        std::fs::remove_file(&path).unwrap();
        assert_eq!(f.get(), None, "removed");

        // Replaced by a rename, as editors and config tools do.
        let tmp = dir.path().join("license.jwt.tmp");
        std::fs::write(&tmp, "renamed").unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        assert_eq!(f.get().as_deref(), Some("renamed"));

        // Written through a hard link in another folder: only the file's own watch sees it.
        let other = tempfile::tempdir().unwrap();
        let link = other.path().join("link");
        std::fs::hard_link(&path, &link).unwrap();
        assert_eq!(f.get().as_deref(), Some("renamed"));
        std::fs::write(&link, "via link").unwrap();
        assert_eq!(f.get().as_deref(), Some("via link"));
    }

    /// Callers racing a writer never see a version older than one whose write returned
    /// before their call began, whichever caller drains the watch.
    #[test]
    fn concurrent_callers_never_see_a_replaced_version() {
        use std::sync::atomic::AtomicU64;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("license.jwt");
        std::fs::write(&path, "0").unwrap();
        let f = Counted::new(path.clone());
        let published = AtomicU64::new(0);
        let done = AtomicBool::new(false);
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    while !done.load(Ordering::Acquire) {
                        let floor = published.load(Ordering::SeqCst);
                        let seen: u64 = f.get().unwrap().parse().unwrap();
                        assert!(seen >= floor, "saw {seen} after {floor} was written");
                    }
                });
            }
            let tmp = dir.path().join("next");
            for n in 1..=3000u64 {
                std::fs::write(&tmp, n.to_string()).unwrap();
                std::fs::rename(&tmp, &path).unwrap();
                published.store(n, Ordering::SeqCst);
            }
            done.store(true, Ordering::Release);
        });
    }

    #[test]
    fn a_symbolic_link_is_read_on_every_call() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let target = elsewhere.path().join("target");
        std::fs::write(&target, "one").unwrap();
        let path = dir.path().join("license.jwt");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let f = Counted::new(path);
        assert_eq!(f.get().as_deref(), Some("one"));
        // The target changes in a folder that is not watched.
        std::fs::write(&target, "two").unwrap();
        assert_eq!(f.get().as_deref(), Some("two"));
        assert_eq!(f.reads(), 2);
    }

    /// The file's folder, or a folder above it, moves away and another tree takes its name:
    /// the new file must be served, and read on every call from then on.
    #[test]
    fn a_moved_folder_on_the_path_ends_the_watch_and_the_file_is_read_again() {
        for moved in ["srv/tollgate/data", "srv/tollgate", "srv"] {
            let root = tempfile::tempdir().unwrap();
            let dir = root.path().join("srv/tollgate/data");
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("license.jwt");
            std::fs::write(&path, "old").unwrap();
            let f = Counted::new(path.clone());
            assert_eq!(f.get().as_deref(), Some("old"));
            // Files coming and going beside the folders above raise nothing.
            std::fs::write(root.path().join("srv/other"), "x").unwrap();
            std::fs::write(root.path().join("other"), "x").unwrap();
            assert_eq!(f.get().as_deref(), Some("old"));
            assert_eq!(f.reads(), 1, "{moved}");

            std::fs::rename(root.path().join(moved), root.path().join("moved")).unwrap();
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, "new").unwrap();
            assert_eq!(f.get().as_deref(), Some("new"), "{moved}");
            assert!(!f.file.is_watched(), "{moved}");
            std::fs::write(&path, "newer").unwrap();
            assert_eq!(f.get().as_deref(), Some("newer"), "{moved}");
        }
    }

    #[test]
    fn a_folder_on_the_way_that_is_a_symbolic_link_means_no_watch() {
        let root = tempfile::tempdir().unwrap();
        let real = root.path().join("real");
        std::fs::create_dir_all(real.join("data")).unwrap();
        let link = root.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        for path in [link.join("data/license.jwt"), link.join("license.jwt")] {
            let f = WatchedFile::<()>::new(path.clone());
            assert!(!f.is_watched(), "{}", path.display());
        }
        assert!(WatchedFile::<()>::new(real.join("data/license.jwt")).is_watched());
    }

    #[test]
    fn no_folder_means_no_watch_and_a_read_per_call() {
        let dir = tempfile::tempdir().unwrap();
        let f = WatchedFile::<bool>::new(dir.path().join("missing/license.jwt"));
        assert!(!f.is_watched());
        let reads = AtomicUsize::new(0);
        for _ in 0..3 {
            assert!(!*f.get(|c| {
                reads.fetch_add(1, Ordering::Relaxed);
                c.unwrap().is_some()
            }));
        }
        assert_eq!(reads.load(Ordering::Relaxed), 3);
    }
}
