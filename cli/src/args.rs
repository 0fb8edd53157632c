//! The command line surface (DESIGN.md section 3), as clap derive types.
//! Values stay strings here; validation happens once, in `proto`, so the
//! CLI, import and the hub refuse the same things with the same words.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Outpost: record e-service help visits and courses, offline first.
#[derive(Debug, Parser)]
#[command(name = "outpost", version, propagate_version = true)]
pub struct Cli {
    /// Data directory (holds the store, config.toml and logs).
    #[arg(long, env = "OUTPOST_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the local store and config for this laptop; prints the device id.
    Init {
        /// Organisation slug, e.g. mjolby.
        #[arg(long)]
        org: String,
        /// Default site for new records, e.g. "Mjölby bibliotek".
        #[arg(long)]
        site: String,
        /// Default staff initials for new records.
        #[arg(long)]
        staff: String,
    },
    /// Help visits.
    Visit {
        #[command(subcommand)]
        command: VisitCommand,
    },
    /// Courses and their sessions.
    Course {
        #[command(subcommand)]
        command: CourseCommand,
    },
    /// Change fields of a record (same flags as add; an empty value clears an optional field).
    Edit(EditArgs),
    /// Erase a record everywhere, history included.
    Delete {
        /// Record id (or a unique prefix of at least 4 characters).
        id: String,
    },
    /// List records.
    List(ListArgs),
    /// Show one record, with any unresolved concurrent values.
    Show {
        /// Record id (or a unique prefix).
        id: String,
    },
    /// Export records as CSV, JSONL or XLSX.
    Export(ExportArgs),
    /// Counts for reporting.
    Stats(StatsArgs),
    /// Import records from CSV or JSONL (the export formats); all or nothing
    /// unless --skip-invalid.
    Import(ImportArgs),
    /// This laptop's identity, store and sync state.
    Status,
    /// Sync with the hub now, in this process, and report what moved.
    Sync,
    /// Enrol this laptop with a hub using a one-time code from an admin.
    Enroll {
        /// The hub's URL, e.g. https://outpost.mjolby.se
        hub_url: String,
        /// The one-time enrolment code (from `outpost admin invite`).
        code: String,
    },
    /// Hub administration: organisations, enrolment, devices, merged exports.
    Admin(AdminArgs),
}

#[derive(Debug, Args)]
pub struct AdminArgs {
    /// The hub's URL (default: this laptop's hub).
    #[arg(long, env = "OUTPOST_HUB_URL")]
    pub hub: Option<String>,
    /// Admin token (from `outpostd hub init`).
    #[arg(long, env = "OUTPOST_ADMIN_TOKEN", hide_env_values = true)]
    pub token: String,
    /// A CA certificate (PEM) to trust for the hub.
    #[arg(long, env = "OUTPOST_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Organisations.
    Org {
        #[command(subcommand)]
        command: OrgCommand,
    },
    /// Make a one-time enrolment code for a laptop of an organisation.
    Invite {
        #[arg(long)]
        org: String,
    },
    /// Enrolled laptops: last seen, clock offset, revoked.
    Devices {
        #[arg(long)]
        org: Option<String>,
    },
    /// Revoke a laptop's token (it stops working at once).
    Revoke {
        /// Device id (see `outpost admin devices`).
        device: String,
    },
    /// Erase a record on the hub (and so on every laptop at its next sync).
    Delete {
        /// Record id.
        id: String,
        /// The organisation whose record it is (needed only when several
        /// organisations hold a record with this id).
        #[arg(long)]
        org: Option<String>,
    },
    /// Export the merged records of every laptop.
    Export(AdminExportArgs),
    /// Statistics over the merged records of every laptop.
    Stats(AdminStatsArgs),
}

#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Add an organisation.
    Add {
        /// Slug, e.g. mjolby.
        slug: String,
        /// Display name, e.g. "Mjölby kommun".
        name: String,
    },
    /// List organisations.
    List,
}

#[derive(Debug, Args)]
pub struct AdminExportArgs {
    #[command(flatten)]
    pub export: ExportArgs,
    /// Only this organisation.
    #[arg(long)]
    pub org: Option<String>,
}

#[derive(Debug, Args)]
pub struct AdminStatsArgs {
    #[command(flatten)]
    pub stats: StatsArgs,
    /// Only this organisation.
    #[arg(long)]
    pub org: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum VisitCommand {
    /// Save a help visit; prints its id.
    Add(VisitFields),
}

#[derive(Debug, Subcommand)]
pub enum CourseCommand {
    /// Save a course; prints its id.
    Add(CourseFields),
    /// Add a session (one meeting) to a course; prints the session id.
    Session(SessionArgs),
}

/// Visit fields. All optional at parse time; `proto` says what is missing,
/// all at once, instead of clap stopping at the first.
#[derive(Debug, Args, Default, Clone)]
pub struct VisitFields {
    /// Day of the visit, YYYY-MM-DD.
    #[arg(long)]
    pub date: Option<String>,
    /// Time of day, HH:MM.
    #[arg(long)]
    pub time: Option<String>,
    /// Minutes of help, 1–480.
    #[arg(long)]
    pub minutes: Option<String>,
    /// drop_in, booked, outreach, phone, course_followup.
    #[arg(long)]
    pub channel: Option<String>,
    /// E-service(s) the visit was about, e.g. BankID (repeat or list several).
    #[arg(long = "service", num_args = 1.., value_name = "SERVICE")]
    pub services: Vec<String>,
    /// e_service, device, internet_basics, security, social_media, other.
    #[arg(long)]
    pub category: Option<String>,
    /// solved, partly, referred, not_solved.
    #[arg(long)]
    pub outcome: Option<String>,
    /// Where the person was referred (optional).
    #[arg(long)]
    pub referred_to: Option<String>,
    /// under_25, 25_44, 45_64, 65_79, 80_plus, unknown.
    #[arg(long)]
    pub age_band: Option<String>,
    /// ISO 639-1 code of the language the help was given in, e.g. sv, ar.
    #[arg(long)]
    pub language: Option<String>,
    /// interpreter, speech_synthesis, large_text, screen_reader (repeatable).
    #[arg(long, num_args = 1.., value_name = "AID")]
    pub assistive: Vec<String>,
    /// What got in the way: SERVICE:KIND[:NOTE], e.g. BankID:login (repeatable).
    #[arg(long = "barrier", value_name = "SERVICE:KIND[:NOTE]")]
    pub barriers: Vec<String>,
    /// The visit touched banking or purchases.
    #[arg(long)]
    pub sensitive: bool,
    /// Free-text note (no names, numbers or addresses: it is screened).
    #[arg(long)]
    pub note: Option<String>,
    /// Site, if not this laptop's default.
    #[arg(long)]
    pub site: Option<String>,
    /// Staff initials, if not this laptop's default.
    #[arg(long)]
    pub staff: Option<String>,
}

#[derive(Debug, Args, Default, Clone)]
pub struct CourseFields {
    /// Course title, e.g. "Nybörjarkurs internet".
    #[arg(long)]
    pub title: Option<String>,
    /// Partner organisation, e.g. Medborgarskolan.
    #[arg(long)]
    pub partner: Option<String>,
    /// Who the course is for.
    #[arg(long)]
    pub target_group: Option<String>,
    /// Free-text note (screened).
    #[arg(long)]
    pub note: Option<String>,
    /// Site, if not this laptop's default.
    #[arg(long)]
    pub site: Option<String>,
    /// Staff initials, if not this laptop's default.
    #[arg(long)]
    pub staff: Option<String>,
}

#[derive(Debug, Args)]
pub struct SessionArgs {
    /// Course id (or a unique prefix).
    pub id: String,
    /// Day of the session, YYYY-MM-DD.
    #[arg(long)]
    pub date: Option<String>,
    /// Start time, HH:MM.
    #[arg(long)]
    pub time: Option<String>,
    /// Length in minutes, 1–480.
    #[arg(long)]
    pub minutes: Option<String>,
    /// How many came, 0–500.
    #[arg(long)]
    pub participants: Option<String>,
    /// Who led it.
    #[arg(long)]
    pub instructor: Option<String>,
    /// Free-text note (screened).
    #[arg(long)]
    pub note: Option<String>,
}

#[derive(Debug, Args)]
pub struct EditArgs {
    /// Record id (or a unique prefix).
    pub id: String,
    #[command(flatten)]
    pub visit: VisitEditFields,
    /// Course title.
    #[arg(long)]
    pub title: Option<String>,
    /// Course partner.
    #[arg(long)]
    pub partner: Option<String>,
    /// Course target group.
    #[arg(long)]
    pub target_group: Option<String>,
    /// Note (visit or course).
    #[arg(long)]
    pub note: Option<String>,
    /// Site.
    #[arg(long)]
    pub site: Option<String>,
    /// Staff initials.
    #[arg(long)]
    pub staff: Option<String>,
}

/// Visit flags for `edit`: like [`VisitFields`], but list flags replace the
/// whole list and `--sensitive`/`--not-sensitive` set the flag either way.
#[derive(Debug, Args, Default)]
pub struct VisitEditFields {
    #[arg(long)]
    pub date: Option<String>,
    #[arg(long)]
    pub time: Option<String>,
    #[arg(long)]
    pub minutes: Option<String>,
    #[arg(long)]
    pub channel: Option<String>,
    /// Replaces the visit's services.
    #[arg(long = "service", num_args = 1.., value_name = "SERVICE")]
    pub services: Option<Vec<String>>,
    #[arg(long)]
    pub category: Option<String>,
    #[arg(long)]
    pub outcome: Option<String>,
    #[arg(long)]
    pub referred_to: Option<String>,
    #[arg(long)]
    pub age_band: Option<String>,
    #[arg(long)]
    pub language: Option<String>,
    /// Replaces the assistive aids (give "" to clear).
    #[arg(long, num_args = 1.., value_name = "AID")]
    pub assistive: Option<Vec<String>>,
    /// Replaces the barriers (give "" to clear).
    #[arg(long = "barrier", value_name = "SERVICE:KIND[:NOTE]")]
    pub barriers: Option<Vec<String>>,
    /// Mark the visit as touching banking or purchases.
    #[arg(long, conflicts_with = "not_sensitive")]
    pub sensitive: bool,
    /// Unmark it.
    #[arg(long)]
    pub not_sensitive: bool,
}

#[derive(Debug, Args, Clone, Default)]
pub struct RangeArgs {
    /// First day to include, YYYY-MM-DD.
    #[arg(long)]
    pub from: Option<String>,
    /// Last day to include, YYYY-MM-DD.
    #[arg(long)]
    pub to: Option<String>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// visit or course.
    #[arg(long)]
    pub kind: Option<String>,
    #[command(flatten)]
    pub range: RangeArgs,
    /// Only this site (case-insensitive).
    #[arg(long)]
    pub site: Option<String>,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// csv, jsonl or xlsx.
    #[arg(long)]
    pub format: String,
    /// visit or course (CSV holds one kind per file; default visit).
    #[arg(long)]
    pub kind: Option<String>,
    #[command(flatten)]
    pub range: RangeArgs,
    /// `;`-separated CSV with a BOM, for Swedish Excel.
    #[arg(long)]
    pub excel: bool,
    /// Write to FILE instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    #[command(flatten)]
    pub range: RangeArgs,
    /// Group by site, month, service or agency.
    #[arg(long)]
    pub by: Option<String>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The file to import (.csv or .jsonl).
    pub file: PathBuf,
    /// csv or jsonl (default: from the file name).
    #[arg(long)]
    pub format: Option<String>,
    /// Import the valid rows and list the others by line.
    #[arg(long)]
    pub skip_invalid: bool,
}
