//! `outpostd`: the laptop daemon, and `outpostd hub`, the central server.
//! Parses arguments, loads settings and hands off to the library.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use outpost_hub::backend::{self, Backend};
use outpost_hub::server::{self, TlsFiles};
use outpost_hub::settings::HubSettings;
use outpost_hub_db::{Actor, Role};
use outpost_store::config::{Paths, Settings};

/// Outpost's background daemon: keeps the local record store and syncs it
/// with the hub whenever the network allows.
#[derive(Debug, Parser)]
#[command(name = "outpostd", version)]
struct Cli {
    /// Data directory (laptop: the store, config.toml, logs; hub: hub.db
    /// unless --database, hub.toml, logs).
    #[arg(long, env = "OUTPOST_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// Machine-readable JSON output (for `hub init`).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the laptop daemon (the default).
    Run,
    /// Run the central hub that laptops sync with.
    Hub(HubArgs),
}

#[derive(Debug, Args)]
struct HubArgs {
    #[command(subcommand)]
    command: Option<HubCommand>,
    // Flags win over `hub.toml` and `OUTPOST_HUB_*` (see
    // `outpost_hub::settings`), so none has a default of its own here.
    /// Address to listen on [default: 127.0.0.1:7878; hub.toml `listen`,
    /// env OUTPOST_HUB_LISTEN].
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// TLS certificate chain (PEM). With --tls-key, the hub speaks HTTPS
    /// [hub.toml `tls_cert`, env OUTPOST_HUB_TLS_CERT].
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) [hub.toml `tls_key`, env OUTPOST_HUB_TLS_KEY].
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Allow plain HTTP on a non-loopback address (behind a TLS proxy only).
    #[arg(long)]
    allow_insecure_http: bool,
    /// Keep the hub's data in this PostgreSQL database
    /// (postgres://user@host/db), which several hub processes may share
    /// [default: hub.db (SQLite) in the data dir; hub.toml `database`, env
    /// OUTPOST_HUB_DATABASE]. Also for `hub init` and `hub restored`.
    #[arg(long, global = true)]
    database: Option<String>,
    /// CA certificate(s) (PEM) the PostgreSQL server's certificate must
    /// be signed by, for TLS to the database (the URL's sslmode, e.g.
    /// ?sslmode=verify-full) [default: the system's roots; hub.toml
    /// `database_ca_file`, env OUTPOST_HUB_DATABASE_CA_FILE].
    #[arg(long, global = true, value_name = "FILE")]
    database_ca_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum HubCommand {
    /// Create the hub's database and print the first admin token.
    Init,
    /// Run once after restoring the hub's database from a backup, before
    /// starting the hub: every laptop then sends all its records again at
    /// its next sync, so records acknowledged after the backup are not lost.
    Restored,
    /// Copy a stopped SQLite hub into an empty PostgreSQL database
    /// (--database), everything in one transaction: organisations, tokens,
    /// codes, devices, records, erasures, configuration and the cursor key,
    /// so laptops carry on syncing where they were.
    Migrate {
        /// Data dir of the SQLite hub (the one holding hub.db).
        #[arg(long, value_name = "DIR")]
        from: PathBuf,
    },
    /// Admin tokens made on the hub machine itself.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Make a new hub-wide admin token and print it (once). This is how a
    /// lost token is replaced: it needs access to the hub's data directory
    /// or database, not an admin token, and works while the hub runs. It is
    /// recorded in the audit log as done on the hub machine; revoke the
    /// lost token afterwards with `outpost admin token revoke ID`.
    New {
        /// The new token's name (who holds it) [default: "admin (made on
        /// the hub machine)"].
        #[arg(long)]
        name: Option<String>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let paths = Paths::resolve(cli.data_dir.as_deref())?;
    match cli.command.unwrap_or(Command::Run) {
        Command::Run => run_laptop(paths),
        Command::Hub(mut args) => match args.command.take() {
            Some(HubCommand::Init) => hub_init(&paths, &hub_settings(&paths, &args)?, cli.json),
            Some(HubCommand::Restored) => hub_restored(&paths, &hub_settings(&paths, &args)?),
            Some(HubCommand::Migrate { from }) => {
                let settings = hub_settings(&paths, &args)?;
                hub_migrate(&from, args.database, &settings, cli.json)
            }
            Some(HubCommand::Token {
                command: TokenCommand::New { name },
            }) => hub_token_new(&paths, &hub_settings(&paths, &args)?, name, cli.json),
            None => run_hub(paths, args),
        },
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("could not start the async runtime")
}

fn run_laptop(paths: Paths) -> anyhow::Result<()> {
    let settings = Settings::load(&paths)?;
    let _guard = outpost_base::logging::init_daemon(&paths.log_dir(), "outpostd", &settings.log)
        .with_context(|| {
            format!(
                "could not open the log directory {}",
                paths.log_dir().display()
            )
        })?;
    runtime()?.block_on(async {
        outpost_daemon::daemon::run(paths, settings, shutdown_signal())
            .await
            .context("outpostd stopped with an error")
    })
}

/// The hub's settings with the database flags on top, for every hub
/// command alike: `--database` / `--database-ca-file`, else
/// `OUTPOST_HUB_DATABASE` / `OUTPOST_HUB_DATABASE_CA_FILE`, else hub.toml,
/// else none (SQLite in the data dir; the system's trust roots).
fn hub_settings(paths: &Paths, args: &HubArgs) -> anyhow::Result<HubSettings> {
    let mut settings = HubSettings::load(paths)?;
    if let Some(database) = args.database.clone().filter(|d| !d.trim().is_empty()) {
        settings.database = Some(database);
    }
    if let Some(ca) = args
        .database_ca_file
        .clone()
        .filter(|f| !f.as_os_str().is_empty())
    {
        settings.database_ca_file = Some(ca);
    }
    Ok(settings)
}

/// Opens the hub's store, saying where on failure.
fn open_hub(paths: &Paths, settings: &HubSettings) -> anyhow::Result<Backend> {
    Backend::open(settings, &paths.data_dir).with_context(|| {
        format!(
            "could not open the hub's database ({})",
            backend::describe(settings.database.as_deref(), &paths.data_dir)
        )
    })
}

/// How to name this hub in a hint: `--data-dir DIR` or `--database URL`.
fn hub_flag(paths: &Paths, database: Option<&str>) -> String {
    match database {
        Some(_) => "--database URL".to_string(),
        None => format!("--data-dir {}", paths.data_dir.display()),
    }
}

fn hub_init(paths: &Paths, settings: &HubSettings, json: bool) -> anyhow::Result<()> {
    let database = settings.database.as_deref();
    let where_ = backend::describe(database, &paths.data_dir);
    let backend = open_hub(paths, settings)?;
    let store = backend.store();
    if store.has_admin_token()? {
        bail!(
            "the hub in {where_} is already initialised; its admin token was printed then (tokens are stored only as hashes)"
        );
    }
    let (account, token) = store.create_account("admin", Role::Admin, None, chrono::Utc::now())?;
    outpost_hub_db::audit(
        store,
        &Actor::hub_machine(),
        "token.create",
        None,
        &format!(
            "hub initialised: created admin token {} ({})",
            account.id, account.name
        ),
    )?;
    if json {
        println!(
            "{}",
            serde_json::json!({ "admin_token": token, "id": account.id })
        );
    } else {
        println!("{token}");
    }
    eprintln!(
        "Hub created in {where_}. Keep this admin token safe: it is shown only once. Start the hub with `outpostd hub {}`.",
        hub_flag(paths, database)
    );
    Ok(())
}

/// `outpostd hub token new`: the lost-token path. Whoever can read the
/// hub's data directory or database already holds everything a token
/// guards, so making one here asks for nothing more; it is audited as
/// done on the hub machine.
fn hub_token_new(
    paths: &Paths,
    settings: &HubSettings,
    name: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let database = settings.database.as_deref();
    let where_ = backend::describe(database, &paths.data_dir);
    let backend = open_hub(paths, settings)?;
    let store = backend.store();
    if !store.has_admin_token()? {
        bail!(
            "the hub in {where_} is not initialised; run `outpostd hub init {}` first",
            hub_flag(paths, database)
        );
    }
    let name = name.unwrap_or_else(|| "admin (made on the hub machine)".into());
    let (account, token) = store
        .create_account(&name, Role::Admin, None, chrono::Utc::now())
        .context("could not make the admin token")?;
    outpost_hub_db::audit(
        store,
        &Actor::hub_machine(),
        "token.create",
        None,
        &format!(
            "created admin token {} ({}) on the hub machine",
            account.id, account.name
        ),
    )
    .context("could not record the new token in the audit log")?;
    if json {
        println!(
            "{}",
            serde_json::json!({ "admin_token": token, "id": account.id })
        );
    } else {
        println!("{token}");
    }
    eprintln!(
        "Made admin token {} ({}) in {where_}. Keep it safe: it is shown only once. If it replaces a lost token, revoke that one: `outpost admin token list`, then `outpost admin token revoke ID`.",
        account.id, account.name
    );
    Ok(())
}

fn hub_restored(paths: &Paths, settings: &HubSettings) -> anyhow::Result<()> {
    let database = settings.database.as_deref();
    let backend = open_hub(paths, settings)?;
    let orgs = backend.rotate_feed_epochs()?;
    eprintln!(
        "Gave the feeds of {orgs} organisation(s) a new epoch: at their next sync, laptops send every record again and re-read the feed. Start the hub with `outpostd hub {}`.",
        hub_flag(paths, database)
    );
    Ok(())
}

fn hub_migrate(
    from: &std::path::Path,
    database: Option<String>,
    settings: &HubSettings,
    json: bool,
) -> anyhow::Result<()> {
    // Only the flag: a database named in the environment or a hub.toml
    // could be a live hub's, and this writes a whole hub into it. The CA
    // file may come from anywhere (it only says whom to trust).
    let Some(url) = database.filter(|d| !d.trim().is_empty()) else {
        bail!(
            "give the empty PostgreSQL database to copy the hub into: --database postgres://user@host/db"
        );
    };
    backend::check_database(&url).map_err(anyhow::Error::msg)?;
    let target = outpost_hub_postgres::describe(&url);
    eprintln!("Copying the hub in {} into {target} ...", from.display());
    let ca_file = settings.database_ca_file.as_deref();
    let summary =
        outpost_hub::migrate::migrate(from, &url, ca_file, &mut |line| eprintln!("  {line}"))
            .with_context(|| {
                format!("could not copy the hub in {} into {target}", from.display())
            })?;
    if json {
        let tables: serde_json::Map<String, serde_json::Value> = summary
            .tables
            .iter()
            .map(|(t, n)| (t.clone(), serde_json::json!(n)))
            .collect();
        println!("{}", serde_json::json!({ "tables": tables }));
    } else {
        for (table, rows) in &summary.tables {
            println!("{table:<14} {rows:>10}");
        }
    }
    eprintln!(
        "Done. Start the hub with `outpostd hub --database URL` (or set database in hub.toml); keep {} as a backup and do not start the SQLite hub again, or laptops would sync with two hubs.",
        from.display()
    );
    Ok(())
}

fn run_hub(paths: Paths, args: HubArgs) -> anyhow::Result<()> {
    let mut settings = hub_settings(&paths, &args)?;
    if let Some(listen) = args.listen {
        settings.listen = listen;
    }
    if let (Some(cert), Some(key)) = (args.tls_cert, args.tls_key) {
        settings.tls_cert = Some(cert);
        settings.tls_key = Some(key);
    }
    settings.allow_insecure_http |= args.allow_insecure_http;
    settings.check().map_err(anyhow::Error::msg)?;
    let _guard = outpost_base::logging::init_daemon(&paths.log_dir(), "hub", &settings.log)
        .with_context(|| {
            format!(
                "could not open the log directory {}",
                paths.log_dir().display()
            )
        })?;
    let mut limits = settings.limits();
    limits.max_connections = connection_cap(limits.max_connections);
    let backend = open_hub(&paths, &settings)?;
    let tls = match (settings.tls_cert, settings.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
        _ => None,
    };
    let listen = settings.listen;
    let public_names: Vec<String> = settings.public_name.into_iter().collect();
    let database = settings.database;
    if !backend.store().has_admin_token()? {
        bail!(
            "the hub in {} is not initialised; run `outpostd hub init {}` first",
            backend::describe(database.as_deref(), &paths.data_dir),
            hub_flag(&paths, database.as_deref())
        );
    }
    let listener = std::net::TcpListener::bind(listen)
        .with_context(|| format!("could not listen on {listen}"))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(address = %listen, "hub listening on {scheme}://{listen}");
    eprintln!("hub listening on {scheme}://{}", listener.local_addr()?);
    outpost_base::install_crypto_provider();
    let store = backend.into_shared();
    runtime()?.block_on(async {
        server::serve_public(
            listener,
            store,
            tls,
            limits,
            public_names,
            shutdown_signal(),
        )
        .await
        .context("the hub stopped with an error")
    })
}

/// Raises this process's open-file soft limit as far as its hard limit
/// allows (the usual soft limit of 1,024 is what a few hundred idle
/// sockets used to exhaust) and returns the connection cap that fits under
/// it, keeping [`server::RESERVED_FDS`] for the database and logs.
fn connection_cap(wanted: usize) -> usize {
    let soft = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "could not raise the open-file limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE)
                .map(|(soft, _)| soft)
                .unwrap_or(1024)
        }
    };
    let fits = usize::try_from(soft)
        .unwrap_or(usize::MAX)
        .saturating_sub(server::RESERVED_FDS);
    let cap = wanted.min(fits).max(1);
    tracing::info!(
        open_file_limit = soft,
        max_connections = cap,
        "connection cap"
    );
    if cap < server::CONNECTIONS_FOR_200_LAPTOPS {
        tracing::warn!(
            open_file_limit = soft,
            max_connections = cap,
            "the open-file limit leaves room for fewer connections than 200 laptops syncing at once need; raise LimitNOFILE (systemd) or `ulimit -n`"
        );
    }
    cap
}

/// Resolves on Ctrl-C or SIGTERM (what systemd and `kill` send).
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
