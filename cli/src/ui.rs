//! `outpost ui`: finds (or starts) the laptop daemon's web app and opens
//! it with a one-time launch link.
//!
//! The CLI serves nothing itself (it links no server code): the daemon
//! writes its app's address to the data dir, and the launch token's hash
//! goes there too (`outpost_store::ui`). Only the token's single use makes
//! the link in the browser's argv safe to show.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use outpost_store::config::Paths;
use outpost_store::store::Store;

/// How long a daemon we started may take to open its web app (opening a
/// large store included) before we say so.
const START_WAIT: Duration = Duration::from_secs(20);

pub fn open(paths: &Paths, no_open: bool) -> Result<()> {
    // A clear "run outpost init first" instead of a daemon that dies.
    drop(Store::open(&paths.data_dir)?);
    let url = match outpost_store::ui::running_url(&paths.data_dir) {
        Some(url) => url,
        None => start_daemon(paths)?,
    };
    let token = outpost_store::ui::mint_launch_token(&paths.data_dir)
        .context("could not make a launch link in the data directory")?;
    let link = format!("{url}launch?t={token}");
    if no_open {
        println!("{link}");
        return Ok(());
    }
    match open_browser(&link) {
        Ok(()) => {
            eprintln!("Opened Outpost in your browser ({url}).");
            Ok(())
        }
        Err(e) => {
            // Still useful: the link can be pasted into any browser here.
            println!("{link}");
            eprintln!(
                "could not open a browser ({e:#}); paste the link above into a browser on this computer (it works once)"
            );
            Ok(())
        }
    }
}

/// Starts `outpostd` for this data dir, detached, and waits for its app.
fn start_daemon(paths: &Paths) -> Result<String> {
    let dir = &paths.data_dir;
    if outpost_store::instance::is_running(dir) {
        bail!(
            "the daemon runs but its web app is not listening (is `ui_port` in use?); see the log in {}",
            paths.log_dir().display()
        );
    }
    let exe = daemon_exe();
    let mut cmd = Command::new(&exe);
    // Pass the data dir on only when it is not the platform default:
    // `--data-dir` also moves the config file into it.
    if Paths::resolve(None).ok().as_ref() != Some(paths) {
        cmd.arg("--data-dir").arg(dir);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // Its own process group: closing the terminal must not stop it.
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.spawn().with_context(|| {
        format!(
            "could not start the daemon {}; is Outpost installed completely?",
            exe.display()
        )
    })?;
    let deadline = Instant::now() + START_WAIT;
    loop {
        if let Some(url) = outpost_store::ui::running_url(dir) {
            return Ok(url);
        }
        if let Some(status) = child.try_wait()? {
            bail!(
                "the daemon stopped at once ({status}); see its log in {}",
                paths.log_dir().display()
            );
        }
        if Instant::now() > deadline {
            bail!(
                "the daemon started but its web app did not open within {} s; see the log in {}",
                START_WAIT.as_secs(),
                paths.log_dir().display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `outpostd` beside this `outpost` (how packages and cargo install them),
/// else whatever `outpostd` the PATH finds.
fn daemon_exe() -> std::path::PathBuf {
    let name = format!("outpostd{}", std::env::consts::EXE_SUFFIX);
    std::env::current_exe()
        .ok()
        .map(|e| e.with_file_name(&name))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| name.into())
}

/// Opens `link` in the default browser: `OUTPOST_BROWSER` if set (a
/// command given the link as its one argument), else the platform's opener.
fn open_browser(link: &str) -> Result<()> {
    let opener = std::env::var("OUTPOST_BROWSER")
        .ok()
        .filter(|s| !s.is_empty());
    let mut cmd = match opener.as_deref() {
        Some(b) => Command::new(b),
        None if cfg!(target_os = "macos") => Command::new("open"),
        None if cfg!(windows) => {
            let mut c = Command::new("cmd");
            c.args(["/C", "start", ""]);
            c
        }
        None => Command::new("xdg-open"),
    };
    cmd.arg(link)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let status = cmd.status().context("no browser opener found (xdg-open)")?;
    if !status.success() {
        bail!("the browser opener failed ({status})");
    }
    Ok(())
}
