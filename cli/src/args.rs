//! The command line surface (DESIGN.md section 3), as clap derive types.
//! Values stay strings here; validation happens once, in `proto`, so the
//! CLI, import and the hub refuse the same things with the same words.

use std::path::PathBuf;

use std::marker::PhantomData;

use clap::{Arg, ArgAction, ArgMatches, Args, FromArgMatches, Parser, Subcommand};
use outpost_proto::fields::Fields;
use outpost_proto::schema::{self, FieldDef, Flag, Presence, Scope, Shape};
use serde_json::Value;

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
    /// Erase a record everywhere, history included. On a terminal it shows
    /// the record and asks first.
    Delete {
        /// Record id (or a unique prefix of at least 4 characters).
        id: String,
        /// Do not ask (scripts never get asked anyway).
        #[arg(short = 'y', long)]
        yes: bool,
    },
    /// List records.
    List(ListArgs),
    /// Show one record, with any unresolved concurrent values.
    Show {
        /// Record id (or a unique prefix).
        id: String,
    },
    /// The service catalogue in force: each e-service, its agency, and
    /// whether the agency is the organisation itself (own) or not (other).
    Services,
    /// Export records as CSV, JSONL or XLSX.
    Export(ExportArgs),
    /// Counts for reporting.
    Stats(StatsArgs),
    /// Write the annual report for a year as one self-contained .html file
    /// (charts and tables, printable).
    Report(ReportArgs),
    /// Import records from XLSX, CSV or JSONL (the export formats, also
    /// after editing in Excel or LibreOffice); all or nothing unless
    /// --skip-invalid.
    ///
    /// Columns are named as the export names them or by their Swedish or
    /// English label, in any case (Datum or date, Åldersgrupp or age_band).
    /// CSV may be UTF-8 or Windows-1252 (Swedish Excel's "CSV
    /// (semikolonavgränsad)"), separated by `,`, `;` or tab. An XLSX is read
    /// sheet by sheet (Visits, Courses; sheets without record columns are
    /// skipped); date, number and TRUE/FALSE cells are read as the export
    /// wrote them. Ids are kept, so importing an export again duplicates
    /// nothing.
    Import(ImportArgs),
    /// This laptop's identity, store and sync state.
    Status,
    /// Sync with the hub now, in this process, and report what moved.
    Sync,
    /// Check the store (integrity, every record loads and validates),
    /// config, catalogue, hub and clock, and say what to do.
    Doctor,
    /// Records kept aside because they could not be loaded or validated.
    Quarantine {
        #[command(subcommand)]
        command: QuarantineCommand,
    },
    /// Enrol this laptop with a hub using a one-time code from an admin.
    ///
    /// The laptop's name shows in `outpost admin devices` and the hub's
    /// dashboard; the default is its site and the first characters of its
    /// device id, e.g. "Skänninge bibliotek · 3f2a". A name may not carry
    /// personal data (personnummer, phone, e-mail) and is at most 60
    /// characters. `outpost rename NAME` changes it later.
    Enroll {
        /// The hub's URL, e.g. https://outpost.mjolby.se
        hub_url: String,
        /// The one-time enrolment code (from `outpost admin invite`), in
        /// any case, dashes optional.
        code: String,
        /// This laptop's name, e.g. "Skänninge bibliotek, datorhörnan"
        /// (default: the site and a short id).
        #[arg(long)]
        name: Option<String>,
    },
    /// Give this laptop a new name (shown in `outpost admin devices`); it
    /// reaches the hub at the next sync.
    Rename {
        /// The new name, at most 60 characters, no personal data.
        #[arg(required_unless_present = "default")]
        name: Option<String>,
        /// Go back to the default name (the site and a short id).
        #[arg(long, conflicts_with = "name")]
        default: bool,
    },
    /// Hub administration: organisations, enrolment, devices, merged exports,
    /// tokens and the audit log.
    Admin(AdminArgs),
    /// Open the staff web app in the default browser (starts the daemon
    /// if it is not running). The link works once.
    Ui {
        /// Print the one-time link instead of opening a browser.
        #[arg(long)]
        no_open: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum QuarantineCommand {
    /// List quarantined records with the reason.
    List,
    /// Try a record again after its cause was fixed (nothing else changes).
    Retry {
        /// Record id.
        id: String,
    },
    /// Erase a quarantined record on this laptop only (the hub keeps its
    /// copy; `outpost delete` erases everywhere).
    Erase {
        /// Record id.
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct AdminArgs {
    /// The hub's URL (default: this laptop's hub).
    #[arg(long, env = "OUTPOST_HUB_URL")]
    pub hub: Option<String>,
    /// A file holding the admin or coordinator token (from `outpostd hub
    /// init`, `outpostd hub token new` or `outpost admin token create`); without
    /// it the token comes from the environment variable
    /// OUTPOST_ADMIN_TOKEN. Never on the command line, where every user of
    /// the machine could read it in the process list.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
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
    /// Enrolled laptops: name, site, staff, last seen (local time),
    /// records waiting at their last sync, clock offset, state.
    Devices {
        #[arg(long)]
        org: Option<String>,
    },
    /// Revoke a laptop's token (it stops working at once).
    Revoke {
        /// The device's id, a unique prefix of it (at least 4 characters)
        /// or its exact name (see `outpost admin devices`).
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
    /// The annual report over the merged records of an organisation.
    Report(AdminReportArgs),
    /// An organisation's service catalogue, kept on the hub and sent to its
    /// laptops at sync.
    Catalogue {
        #[command(subcommand)]
        command: CatalogueCommand,
    },
    /// An organisation's site list, kept on the hub and sent to its laptops
    /// at sync (sites are counted under the listed spelling).
    Sites {
        #[command(subcommand)]
        command: SitesCommand,
    },
    /// Sign in to the hub's dashboard in a browser: prints a one-time code
    /// (valid 15 minutes) and a link to the sign-in page. The dashboard
    /// then shows what this admin token may see.
    Signin,
    /// Named admin tokens and read-only coordinator tokens (a hub-wide
    /// admin token manages them).
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// The hub's audit log (who did what, when), verified: a non-zero exit
    /// when an entry was edited, removed or reordered. A token scoped to
    /// organisations sees their entries only (the whole chain is still
    /// verified, on the hub).
    Audit {
        /// Only this organisation's entries.
        #[arg(long)]
        org: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a named token; prints only the token (shown once; with --json
    /// {"admin_token":…,"id":…}). Default: an admin of every organisation.
    Create {
        /// Who holds it, e.g. "Anna, Mjölby".
        #[arg(long)]
        name: String,
        /// Read-only: statistics, reports, exports, records, devices and
        /// the audit log of its organisations (--org, one or more).
        #[arg(long)]
        coordinator: bool,
        /// Scope the token to this organisation (repeat for several).
        #[arg(long = "org", value_name = "ORG")]
        orgs: Vec<String>,
    },
    /// Every token: id, name, role, organisations, created, last used,
    /// revoked (never the secrets).
    List,
    /// Revoke a token at once (an id or the start of one, as in `list`).
    /// The last hub-wide admin token cannot be revoked.
    Revoke {
        /// Token id (tok_…), or at least 4 characters of it.
        id: String,
    },
    /// Give a token a new secret and print it (once); the old one stops at
    /// once. For a token that may have leaked.
    Rotate {
        /// Token id (tok_…), or at least 4 characters of it.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum CatalogueCommand {
    /// Set the catalogue from a TOML file (the catalogue.toml format: the
    /// org's [[service]] entries over the built-in catalogue).
    Set {
        file: PathBuf,
        #[arg(long)]
        org: String,
    },
    /// Show the catalogue in force for the organisation.
    Show {
        #[arg(long)]
        org: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SitesCommand {
    /// Add sites (a name already listed in another case or accent is kept
    /// once).
    Add {
        #[arg(required = true)]
        names: Vec<String>,
        #[arg(long)]
        org: String,
    },
    /// Remove sites (matched ignoring case and accents).
    Remove {
        #[arg(required = true)]
        names: Vec<String>,
        #[arg(long)]
        org: String,
    },
    /// List the sites.
    List {
        #[arg(long)]
        org: String,
    },
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
pub struct ReportArgs {
    /// The year to report, YYYY.
    #[arg(long, value_name = "YYYY")]
    pub year: i32,
    /// The report file to write: .xlsx (summary sheet with charts, the
    /// tables and the records) or .html (one printable file).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: PathBuf,
    /// Language of labels and number formats: sv (default) or en.
    #[arg(long, default_value = "sv")]
    pub lang: String,
}

#[derive(Debug, Args)]
pub struct AdminReportArgs {
    #[command(flatten)]
    pub report: ReportArgs,
    /// The organisation to report on.
    #[arg(long)]
    pub org: String,
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
    /// `course session edit|delete COURSE SESSION` correct or remove one.
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Session(SessionArgs),
}

/// `course session edit|delete`: a session is named by its stable id (or
/// a unique prefix, at least 4 characters; `outpost show COURSE` lists the
/// ids), never by its position, which shifts when another laptop adds one.
#[derive(Debug, Subcommand)]
pub enum SessionCommand {
    /// Change fields of a course session (only the flags given).
    Edit(SessionEditArgs),
    /// Remove a course session, here now and on the hub and every other
    /// laptop at their next sync; asks first on a terminal.
    Delete(SessionDeleteArgs),
}

#[derive(Debug, Args)]
pub struct SessionEditArgs {
    /// Course id (or a unique prefix).
    pub course: String,
    /// Session id (or a unique prefix).
    pub session: String,
    #[command(flatten)]
    pub fields: FieldFlags<SessionEdit>,
}

#[derive(Debug, Args)]
pub struct SessionDeleteArgs {
    /// Course id (or a unique prefix).
    pub course: String,
    /// Session id (or a unique prefix).
    pub session: String,
    /// Do not ask, even on a terminal.
    #[arg(long)]
    pub yes: bool,
}

/// The record fields given as flags, as raw [`Fields`] (only the flags
/// given). The flags are built from the field table
/// ([`outpost_proto::schema::FIELDS`]): a field with a [`Flag`] gets
/// `--FLAG VALUE` (list fields: repeatable, several values per flag; bool
/// fields: a switch), with the table's help and allowed values. All are
/// optional at parse time; `proto` says what is missing, all at once,
/// instead of clap stopping at the first.
#[derive(Debug, Clone, Default)]
pub struct FieldFlags<S: FlagSet> {
    pub fields: Fields,
    _set: PhantomData<S>,
}

/// Which fields a command takes as flags, and how.
pub trait FlagSet: Default + Clone + std::fmt::Debug + Send + Sync + 'static {
    /// The scopes whose flagged fields the command takes (a flag shared by
    /// two scopes, like `--note` in `edit`, appears once).
    const SCOPES: &'static [Scope];
    /// `edit`: only the flags given become fields; an empty value clears
    /// an optional field, a list flag replaces the whole list (`""` clears
    /// it), and a bool field also gets its `off` switch (`--not-sensitive`).
    /// Otherwise absent lists are empty and absent switches false. Blank
    /// list items are dropped either way.
    const EDIT: bool;
}

macro_rules! flag_set {
    ($(#[$m:meta])* $name:ident, [$($scope:ident),+], $edit:expr) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $name;
        impl FlagSet for $name {
            const SCOPES: &'static [Scope] = &[$(Scope::$scope),+];
            const EDIT: bool = $edit;
        }
    };
}
flag_set!(
    /// `visit add`.
    VisitAdd, [Common, Visit], false
);
flag_set!(
    /// `course add`.
    CourseAdd, [Common, Course], false
);
flag_set!(
    /// `course session`.
    SessionAdd, [Session], false
);
flag_set!(
    /// `course session edit`.
    SessionEdit, [Session], true
);
flag_set!(
    /// `edit` (a visit or a course).
    RecordEdit, [Common, Visit, Course], true
);

pub type VisitFields = FieldFlags<VisitAdd>;
pub type CourseFields = FieldFlags<CourseAdd>;

/// The flagged fields of `S`, one per flag.
pub fn flagged<S: FlagSet>() -> Vec<(&'static FieldDef, Flag)> {
    let mut out: Vec<(&'static FieldDef, Flag)> = Vec::new();
    for scope in S::SCOPES {
        for def in schema::fields_of(*scope) {
            if let Some(flag) = def.flag
                && !out.iter().any(|(_, f)| f.long == flag.long)
            {
                out.push((def, flag));
            }
        }
    }
    out
}

impl<S: FlagSet> Args for FieldFlags<S> {
    fn augment_args(mut cmd: clap::Command) -> clap::Command {
        for (def, flag) in flagged::<S>() {
            let mut help = def.cli_help();
            if S::EDIT && def.shape == Shape::Date {
                help.push_str(" Also today/idag, yesterday/igår.");
            } else if !S::EDIT {
                if let Some(default) = default_of(def.name) {
                    help.push(' ');
                    help.push_str(default);
                } else if def.presence == Presence::Required && def.shape != Shape::Bool {
                    help.insert_str(0, "[required] ");
                }
            }
            if S::EDIT && def.shape.is_list() {
                help.push_str(" Replaces the whole list (give \"\" to clear).");
            } else if S::EDIT
                && def.presence == Presence::Optional
                && !def.shape.is_list()
                && def.shape != Shape::Bool
            {
                help.push_str(" An empty value clears it.");
            }
            let arg = Arg::new(flag.long).long(flag.long).help(help);
            let arg = match def.shape {
                Shape::Bool => arg.action(ArgAction::SetTrue),
                shape if shape.is_list() => arg
                    .action(ArgAction::Append)
                    .value_name(flag.value_name)
                    // `--service BankID 1177`, but `--barrier` items hold
                    // spaces and colons, so one value per flag there.
                    .num_args(if shape == Shape::Barriers {
                        1..=1
                    } else {
                        1..=usize::MAX
                    }),
                // One value per flag: it may start with `-` (`--note "-5
                // kr at the counter"`); lists keep the usual rule, or
                // `--service A --category x` would read the flag as a value.
                _ => arg
                    .action(ArgAction::Set)
                    .value_name(flag.value_name)
                    .allow_hyphen_values(true),
            };
            let arg = if def.shape == Shape::Barriers {
                arg.allow_hyphen_values(true)
            } else {
                arg
            };
            match flag.off {
                Some(off) if S::EDIT => {
                    cmd = cmd.arg(arg.conflicts_with(off)).arg(
                        Arg::new(off)
                            .long(off)
                            .action(ArgAction::SetTrue)
                            .help(format!("Unset --{}.", flag.long)),
                    );
                }
                _ => cmd = cmd.arg(arg),
            }
        }
        cmd
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

/// What an add command fills in for a field left out, for its help (the
/// values themselves are set in `commands`).
fn default_of(field: &str) -> Option<&'static str> {
    match field {
        "date" => Some("Default: today. Also today/idag, yesterday/igår."),
        "site" | "staff" => Some("Default: this laptop's (set by `outpost init`)."),
        "channel" => Some("[required] unless default_channel is set in config.toml."),
        "language" => Some("[required] unless default_language is set in config.toml."),
        _ => None,
    }
}

impl<S: FlagSet> FromArgMatches for FieldFlags<S> {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        let mut fields = Fields::new();
        for (def, flag) in flagged::<S>() {
            let value = match def.shape {
                Shape::Bool => {
                    if m.get_flag(flag.long) {
                        Some(Value::Bool(true))
                    } else if S::EDIT && flag.off.is_some_and(|off| m.get_flag(off)) {
                        Some(Value::Bool(false))
                    } else if S::EDIT {
                        None
                    } else {
                        Some(Value::Bool(false))
                    }
                }
                shape if shape.is_list() => match m.get_many::<String>(flag.long) {
                    Some(items) => Some(Value::Array(
                        items
                            .filter(|s| !s.trim().is_empty())
                            .map(|s| Value::String(s.clone()))
                            .collect(),
                    )),
                    None if S::EDIT => None,
                    None => Some(Value::Array(Vec::new())),
                },
                _ => m.get_one::<String>(flag.long).map(|v| {
                    if S::EDIT && v.trim().is_empty() {
                        Value::Null
                    } else {
                        Value::String(v.clone())
                    }
                }),
            };
            if let Some(v) = value {
                fields.insert(def.name.to_string(), v);
            }
        }
        Ok(FieldFlags {
            fields,
            _set: PhantomData,
        })
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

#[derive(Debug, Args)]
pub struct SessionArgs {
    /// Course id (or a unique prefix).
    #[arg(required = true)]
    pub id: Option<String>,
    #[command(flatten)]
    pub fields: FieldFlags<SessionAdd>,
    #[command(subcommand)]
    pub action: Option<SessionCommand>,
}

#[derive(Debug, Args)]
pub struct EditArgs {
    /// Record id (or a unique prefix).
    pub id: String,
    #[command(flatten)]
    pub fields: FieldFlags<RecordEdit>,
}

#[derive(Debug, Args, Clone, Default)]
pub struct RangeArgs {
    /// First day to include: YYYY-MM-DD, or YYYY-MM / YYYY for the first day
    /// of that month or year.
    #[arg(long, value_name = "DATE")]
    pub from: Option<String>,
    /// Last day to include: YYYY-MM-DD, or YYYY-MM / YYYY for the last day of
    /// that month or year.
    #[arg(long, value_name = "DATE")]
    pub to: Option<String>,
    /// One calendar year, YYYY (the same as --from YYYY --to YYYY).
    #[arg(long, value_name = "YYYY", conflicts_with_all = ["from", "to"])]
    pub year: Option<String>,
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
    /// Group by one or more of: site, year, quarter, month, week, service,
    /// agency, channel, category, outcome, age_band, language, assistive,
    /// partner, staff (comma-separated, e.g. `site,month`).
    #[arg(long, value_name = "DIMENSIONS")]
    pub by: Option<String>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The file to import (.xlsx, .csv or .jsonl; at most 100 MB).
    pub file: PathBuf,
    /// xlsx, csv or jsonl (default: from the file name).
    #[arg(long)]
    pub format: Option<String>,
    /// Import the valid rows and list the others by line.
    #[arg(long)]
    pub skip_invalid: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use serde_json::json;

    /// Fields the program sets itself, which therefore have no flag.
    const NO_FLAG: &[(Scope, &str)] = &[
        (Scope::Common, "id"),
        (Scope::Common, "kind"),
        (Scope::Common, "org"),
        (Scope::Common, "device"),
        (Scope::Common, "created_at"),
        (Scope::Common, "updated_at"),
        (Scope::Course, "sessions"),
        (Scope::Session, "id"),
    ];

    fn subcommand<'c>(cmd: &'c clap::Command, path: &[&str]) -> &'c clap::Command {
        path.iter().fold(cmd, |c, name| {
            c.find_subcommand(name)
                .unwrap_or_else(|| panic!("no subcommand {name}"))
        })
    }

    /// Every field has a flag on its add command and on `edit` (session
    /// fields: on `course session`), or is set by the program: a field added
    /// to the table without a decision about its flag fails here.
    #[test]
    fn every_field_has_a_cli_flag() {
        let cli = Cli::command();
        for def in schema::FIELDS {
            let Some(flag) = def.flag else {
                assert!(
                    NO_FLAG.contains(&(def.scope, def.name)),
                    "{:?} {} has no flag",
                    def.scope,
                    def.name
                );
                continue;
            };
            let commands: &[&[&str]] = match def.scope {
                Scope::Common => &[&["visit", "add"], &["course", "add"], &["edit"]],
                Scope::Visit => &[&["visit", "add"], &["edit"]],
                Scope::Course => &[&["course", "add"], &["edit"]],
                Scope::Session => &[&["course", "session"], &["course", "session", "edit"]],
            };
            for path in commands {
                let cmd = subcommand(&cli, path);
                let arg = cmd
                    .get_arguments()
                    .find(|a| a.get_long() == Some(flag.long))
                    .unwrap_or_else(|| panic!("{path:?} lacks --{}", flag.long));
                let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
                for value in def.shape.values().unwrap_or_default() {
                    assert!(help.contains(value), "--{} help lacks {value}", flag.long);
                }
            }
        }
    }

    #[test]
    fn flags_become_fields() {
        let cli = Cli::try_parse_from([
            "outpost",
            "visit",
            "add",
            "--service",
            "BankID",
            "1177",
            "--barrier",
            "BankID:login:a note",
            "--barrier",
            "1177:form",
            "--age-band",
            "65_79",
            "--sensitive",
        ])
        .unwrap();
        let Command::Visit {
            command: VisitCommand::Add(f),
        } = cli.command
        else {
            panic!()
        };
        assert_eq!(f.fields["services"], json!(["BankID", "1177"]));
        assert_eq!(
            f.fields["barriers"],
            json!(["BankID:login:a note", "1177:form"])
        );
        assert_eq!(f.fields["age_band"], json!("65_79"));
        assert_eq!(f.fields["sensitive"], json!(true));
        assert_eq!(f.fields["assistive"], json!([]));
        assert!(!f.fields.contains_key("note"));
    }

    #[test]
    fn edit_flags_clear_replace_and_unset() {
        let cli = Cli::try_parse_from([
            "outpost",
            "edit",
            "abcd",
            "--note",
            "",
            "--assistive",
            "",
            "--not-sensitive",
        ])
        .unwrap();
        let Command::Edit(a) = cli.command else {
            panic!()
        };
        assert_eq!(a.fields.fields["note"], Value::Null);
        assert_eq!(a.fields.fields["assistive"], json!([]));
        assert_eq!(a.fields.fields["sensitive"], json!(false));
        assert_eq!(a.fields.fields.len(), 3);
        assert!(
            Cli::try_parse_from(["outpost", "edit", "abcd", "--sensitive", "--not-sensitive"])
                .is_err()
        );
    }
}
