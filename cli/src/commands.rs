//! One function per command. Each opens the store, does its work in one
//! store call (one transaction), and prints.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use chrono::{DateTime, FixedOffset, NaiveDate};
use outpost_files::export::{self, ExportOptions, Format};
use outpost_files::report::{Lang, ReportBuilder};
use outpost_proto::Record;
use outpost_proto::catalogue::{AgencyScope, Catalogue};
use outpost_proto::central::OrgConfig;
use outpost_proto::fields::Fields;
use outpost_proto::record::Kind;
use outpost_proto::sites::SiteList;
use outpost_proto::stats::{Grouping, StatsBuilder};
use outpost_store::central::{self, InForce};
use outpost_store::config::{Paths, Settings};
use outpost_store::store::{Filter, Store, SyncStatus};
use serde_json::{Value, json};

use outpost_proto::sync::FailureKind;
use outpost_store::client::HubClient;
use outpost_store::sync::{SyncLock, SyncOptions};
use reqwest::Method;

use crate::args::{
    AdminArgs, AdminCommand, CatalogueCommand, Cli, Command, CourseCommand, CourseFields, EditArgs,
    ExportArgs, ImportArgs, ListArgs, OrgCommand, RangeArgs, ReportArgs, SessionArgs, SitesCommand,
    StatsArgs, VisitCommand, VisitFields,
};
use crate::args::{SessionCommand, SessionDeleteArgs, SessionEditArgs, TokenCommand};
use crate::output;

/// `println!` that returns the write error instead of panicking, so a
/// closed stdout (`outpost stats | head -1`) reaches `main` as an
/// `io::Error` of kind `BrokenPipe` and ends the command quietly.
macro_rules! outln {
    ($($arg:tt)*) => {
        writeln!(std::io::stdout().lock(), $($arg)*)?
    };
}

/// `print!` counterpart of [`outln!`].
macro_rules! out {
    ($($arg:tt)*) => {
        write!(std::io::stdout().lock(), $($arg)*)?
    };
}

/// Everything a command needs to know about where it runs.
struct Ctx {
    paths: Paths,
    json: bool,
}

impl Ctx {
    fn open(&self) -> Result<Store> {
        Ok(Store::open(&self.paths.data_dir)?)
    }

    fn settings(&self) -> Result<Settings> {
        Ok(Settings::load(&self.paths)?)
    }

    /// The catalogue and site list in force on this laptop: the hub's on
    /// an enrolled laptop, else the local file (`outpost_store::central`).
    fn in_force(&self, store: &Store) -> Result<InForce> {
        Ok(central::in_force(store, &self.settings()?, &self.paths)?)
    }

    /// Prints a made id or code: the bare value, or `{"key": value}` with --json.
    fn print_made(&self, key: &str, value: &str) -> Result<()> {
        if self.json {
            outln!("{}", json!({ key: value }));
        } else {
            outln!("{value}");
        }
        Ok(())
    }
}

fn now() -> DateTime<FixedOffset> {
    chrono::Local::now().fixed_offset()
}

/// Whether a person is at the keyboard: both stdin and stderr are a
/// terminal. Only then does a command ask; scripts, pipes and `import` are
/// never held up by a question.
fn interactive() -> bool {
    use std::io::IsTerminal;
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Asks a yes/no question on stderr and reads the answer from stdin
/// (`y`/`yes`/`j`/`ja`, any case; Enter takes `default`).
fn confirm(question: &str, default: bool) -> Result<bool> {
    let hint = if default { "[Y/n]" } else { "[y/N]" };
    eprint!("{question} {hint} ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .context("could not read the answer from the terminal")?;
    Ok(match answer.trim().to_lowercase().as_str() {
        "" => default,
        "y" | "yes" | "j" | "ja" => true,
        _ => false,
    })
}

/// Reads `today`/`idag`/`yesterday`/`igår` in a date field as that day.
fn resolve_day_words(f: &mut Fields, today: NaiveDate) {
    if let Some(Value::String(s)) = f.get("date")
        && let Some(day) = outpost_proto::input::day_word(s, today)
    {
        f.insert("date".into(), Value::String(day.to_string()));
    }
}

/// A date ahead or more than a year back is saved, with a warning; on a
/// terminal the user is asked first (a typo like 2062 would otherwise land
/// in another year's report unseen).
fn check_date(f: &Fields, today: NaiveDate) -> Result<()> {
    let Some(date) = f
        .get("date")
        .and_then(Value::as_str)
        .and_then(|s| s.trim().parse::<NaiveDate>().ok())
    else {
        return Ok(()); // missing or malformed: validation says so
    };
    let Some(concern) = outpost_proto::input::date_concern(date, today) else {
        return Ok(());
    };
    eprintln!("warning: the date {date} {concern}");
    if interactive() && !confirm("Save it with this date?", false)? {
        bail!("nothing was saved; give the right date with --date YYYY-MM-DD (or --date today)");
    }
    Ok(())
}

/// Warns about services not in the catalogue, with the known one a typo
/// probably meant; on a terminal offers to use that one instead.
fn check_services(f: &mut Fields, catalogue: &Catalogue) -> Result<()> {
    let Some(Value::Array(items)) = f.get_mut("services") else {
        return Ok(());
    };
    let ask = interactive();
    for item in items.iter_mut() {
        let Some(name) = item.as_str().map(str::trim).filter(|s| !s.is_empty()) else {
            continue;
        };
        if catalogue.resolve(name).scope != AgencyScope::Unknown {
            continue;
        }
        let name = name.to_string();
        match catalogue.suggest(&name) {
            Some(known) => {
                let known = known.to_string();
                if ask
                    && confirm(
                        &format!(
                            "'{name}' is not in the service catalogue. Did you mean '{known}'?"
                        ),
                        true,
                    )?
                {
                    *item = Value::String(known);
                } else {
                    eprintln!(
                        "warning: service '{name}' is not in the service catalogue (did you mean '{known}'?); it is saved and counted as agency 'unknown'"
                    );
                }
            }
            None => eprintln!(
                "warning: service '{name}' is not in the service catalogue; it is saved and counted as agency 'unknown' (`outpost services` lists the catalogue; add it to catalogue.toml to map it)"
            ),
        }
    }
    Ok(())
}

pub fn run(cli: Cli) -> Result<()> {
    let ctx = Ctx {
        paths: Paths::resolve(cli.data_dir.as_deref())?,
        json: cli.json,
    };
    match cli.command {
        Command::Init { org, site, staff } => init(&ctx, &org, &site, &staff),
        Command::Visit {
            command: VisitCommand::Add(fields),
        } => visit_add(&ctx, fields),
        Command::Course {
            command: CourseCommand::Add(fields),
        } => course_add(&ctx, fields),
        Command::Course {
            command: CourseCommand::Session(args),
        } => course_session(&ctx, args),
        Command::Edit(args) => edit(&ctx, args),
        Command::Delete { id, yes } => delete(&ctx, &id, yes),
        Command::Services => services(&ctx),
        Command::List(args) => list(&ctx, args),
        Command::Show { id } => show(&ctx, &id),
        Command::Export(args) => export_cmd(&ctx, args),
        Command::Stats(args) => stats(&ctx, args),
        Command::Report(args) => report_cmd(&ctx, args),
        Command::Status => status(&ctx),
        Command::Import(args) => import_cmd(&ctx, args),
        Command::Sync => sync_now(&ctx),
        Command::Doctor => doctor(&ctx),
        Command::Quarantine { command } => quarantine(&ctx, command),
        Command::Enroll {
            hub_url,
            code,
            name,
        } => enroll(&ctx, &hub_url, &code, name.as_deref()),
        Command::Rename { name, default } => rename(&ctx, name.filter(|_| !default).as_deref()),
        Command::Admin(args) => admin(&ctx, args),
        Command::Ui { no_open } => crate::ui::open(&ctx.paths, no_open),
    }
}

fn init(ctx: &Ctx, org: &str, site: &str, staff: &str) -> Result<()> {
    let store = Store::init(&ctx.paths.data_dir, org, site, staff)?;
    let device = store.identity().device.clone();
    ctx.print_made("device", &device)?;
    eprintln!(
        "Outpost store created in {} for {org}. Record a visit with `outpost visit add`.",
        ctx.paths.data_dir.display()
    );
    Ok(())
}

fn visit_add(ctx: &Ctx, a: VisitFields) -> Result<()> {
    let mut store = ctx.open()?;
    let in_force = ctx.in_force(&store)?;
    let settings = ctx.settings()?;
    let now = now();
    let today = now.date_naive();
    // Defaults first, flags over them: today, and the laptop's channel and
    // language when its settings name them (site and staff come from
    // `new_fields`).
    let mut f = store.new_fields(Kind::Visit, now);
    f.insert("date".into(), Value::String(today.to_string()));
    for (field, default) in [
        ("channel", &settings.default_channel),
        ("language", &settings.default_language),
    ] {
        if let Some(value) = default {
            f.insert(field.into(), Value::String(value.clone()));
        }
    }
    f.extend(a.fields);
    resolve_day_words(&mut f, today);
    // Every rule (at least one service for an e-service visit included) is
    // proto's, so `visit add`, import and the hub refuse alike; the
    // questions below only catch what is valid but probably not meant.
    check_services(&mut f, &in_force.catalogue)?;
    site_from_list(&in_force.sites, &mut f);
    check_date(&f, today)?;
    let record = store.add(&f)?;
    ctx.print_made("id", &record.id.to_string())?;
    Ok(())
}

/// Offers the org's site list: a typed site that matches a listed one
/// (ignoring case and accents) is saved in the listed spelling, and one
/// not on the list is saved as typed with a warning that names the list.
fn site_from_list(sites: &SiteList, f: &mut Fields) {
    if sites.is_empty() {
        return;
    }
    let Some(Value::String(typed)) = f.get("site").cloned() else {
        return;
    };
    match sites.lookup(&typed) {
        Some(listed) if listed != typed => {
            f.insert("site".into(), Value::String(listed.to_string()));
        }
        Some(_) => {}
        None => eprintln!(
            "warning: site '{}' is not on the organisation's site list ({}); it is saved and counted as typed",
            typed.trim(),
            sites.names().join(", ")
        ),
    }
}

/// `outpost services`: the catalogue in force (the hub's on an enrolled
/// laptop, else the built-in one with the local file).
fn services(ctx: &Ctx) -> Result<()> {
    let store = ctx.open()?;
    let in_force = ctx.in_force(&store)?;
    let entries = in_force.catalogue.entries();
    if ctx.json {
        outln!("{}", serde_json::to_string(&entries)?);
        return Ok(());
    }
    let width = entries
        .iter()
        .map(|e| e.name.chars().count())
        .max()
        .unwrap_or(7)
        .max(7);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    writeln!(out, "{:<width$}  {:<5}  AGENCY", "SERVICE", "SCOPE")?;
    for e in &entries {
        writeln!(
            out,
            "{:<width$}  {:<5}  {}",
            e.name,
            e.scope.to_string(),
            e.agency
        )?;
    }
    out.flush()?;
    eprintln!(
        "{} services; own = run by the organisation itself, other = another agency, bank or region",
        entries.len()
    );
    Ok(())
}

fn course_add(ctx: &Ctx, a: CourseFields) -> Result<()> {
    let mut store = ctx.open()?;
    let mut f = store.new_fields(Kind::Course, now());
    f.extend(a.fields);
    f.insert("sessions".into(), Value::Array(Vec::new()));
    let record = store.add(&f)?;
    ctx.print_made("id", &record.id.to_string())?;
    Ok(())
}

fn course_session(ctx: &Ctx, a: SessionArgs) -> Result<()> {
    match a.action {
        Some(SessionCommand::Edit(e)) => return session_edit(ctx, e),
        Some(SessionCommand::Delete(d)) => return session_delete(ctx, d),
        None => {}
    }
    let mut store = ctx.open()?;
    // clap requires the id when no subcommand is given.
    let id = store.resolve_id(a.id.as_deref().unwrap_or_default())?;
    let now = now();
    let today = now.date_naive();
    let mut f = a.fields.fields;
    if !f.contains_key("date") {
        f.insert("date".into(), Value::String(today.to_string()));
    }
    resolve_day_words(&mut f, today);
    check_date(&f, today)?;
    let session = store.add_session(&id, &f, now)?;
    ctx.print_made("session", &session.id)?;
    Ok(())
}

/// `course session edit COURSE SESSION --FIELD VALUE…`.
fn session_edit(ctx: &Ctx, a: SessionEditArgs) -> Result<()> {
    let mut store = ctx.open()?;
    let course = store.resolve_id(&a.course)?;
    let now = now();
    let mut f = a.fields.fields;
    resolve_day_words(&mut f, now.date_naive());
    check_date(&f, now.date_naive())?;
    let session = store.edit_session(&course, &a.session, &f, now)?;
    if ctx.json {
        outln!("{}", json!({ "course": course, "session": session }));
    } else {
        eprintln!("updated session {} of course {course}", session.id);
    }
    Ok(())
}

/// `course session delete COURSE SESSION [--yes]`: on a terminal, shows
/// the session and asks first; scripts (no terminal) are never blocked.
fn session_delete(ctx: &Ctx, a: SessionDeleteArgs) -> Result<()> {
    let mut store = ctx.open()?;
    let course = store.resolve_id(&a.course)?;
    let session = store.session(&course, &a.session)?;
    if !a.yes && interactive() {
        eprintln!(
            "session {} of course {course}: {}{}, {} min, {} participants",
            session.id,
            session.date,
            session
                .time
                .map(|t| t.format(" %H:%M").to_string())
                .unwrap_or_default(),
            session.minutes,
            session.participants,
        );
        if !confirm(
            "Remove it here now, and on the hub and every other laptop at their next sync?",
            false,
        )? {
            bail!("nothing removed (answer y to remove, or pass --yes)");
        }
    }
    let removed = store.delete_session(&course, &session.id, now())?;
    if ctx.json {
        outln!(
            "{}",
            json!({ "course": course, "deleted_session": removed.id })
        );
    } else {
        eprintln!(
            "removed session {} of course {course}; the hub and other laptops remove it at their next sync",
            removed.id
        );
    }
    Ok(())
}

fn edit(ctx: &Ctx, a: EditArgs) -> Result<()> {
    let mut store = ctx.open()?;
    let id = store.resolve_id(&a.id)?;
    let mut f = a.fields.fields;
    if f.is_empty() {
        bail!(
            "nothing to change: give at least one field flag, e.g. --outcome solved (see `outpost edit --help`)"
        );
    }
    let now = now();
    resolve_day_words(&mut f, now.date_naive());
    if f.contains_key("services") || f.contains_key("site") {
        let in_force = ctx.in_force(&store)?;
        check_services(&mut f, &in_force.catalogue)?;
        site_from_list(&in_force.sites, &mut f);
    }
    check_date(&f, now.date_naive())?;
    let record = store.edit(&id, &f, now)?;
    if ctx.json {
        outln!("{}", serde_json::to_string(&record)?);
    } else {
        eprintln!("updated {}", record.id);
    }
    Ok(())
}

fn delete(ctx: &Ctx, id: &str, yes: bool) -> Result<()> {
    let mut store = ctx.open()?;
    // A full id is taken as given, so deleting an already erased record
    // again is harmless; a prefix must match a live record.
    let id = store.resolve_id(id)?;
    if !yes
        && interactive()
        && let Some(stored) = store.get(&id)?
    {
        eprintln!("{}", output::list_line(&stored.record));
        if !confirm(
            "Erase this record on this laptop, on the hub and on every other laptop? It cannot be undone.",
            false,
        )? {
            bail!("nothing was erased");
        }
    }
    store.delete(&id, now())?;
    if ctx.json {
        outln!("{}", json!({ "deleted": id }));
    } else {
        eprintln!(
            "erased {id} (its history too); the hub and other laptops erase it at their next sync"
        );
    }
    Ok(())
}

fn parse_kind(kind: Option<&str>) -> Result<Option<Kind>> {
    kind.map(|k| k.parse::<Kind>().map_err(|m| anyhow!("--kind: {m}")))
        .transpose()
}

fn parse_range(r: &RangeArgs) -> Result<(Option<NaiveDate>, Option<NaiveDate>)> {
    outpost_proto::filter::parse_range(r.year.as_deref(), r.from.as_deref(), r.to.as_deref())
        .map_err(|m| anyhow!(m))
}

fn list(ctx: &Ctx, a: ListArgs) -> Result<()> {
    let store = ctx.open()?;
    let (from, to) = parse_range(&a.range)?;
    let filter = Filter {
        kind: parse_kind(a.kind.as_deref())?,
        from,
        to,
        site: a.site,
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if ctx.json {
        // Streamed as one JSON array so 100,000 records never sit in memory.
        write!(out, "[")?;
        let mut first = true;
        store.try_for_each(&filter, |r| -> Result<()> {
            let sep = if first { "" } else { "," };
            first = false;
            let line = serde_json::to_string(&r.record)?;
            write!(out, "{sep}\n{line}")?;
            Ok(())
        })?;
        writeln!(out, "{}]", if first { "" } else { "\n" })?;
    } else {
        let mut n = 0u64;
        writeln!(out, "{}", output::LIST_HEADER)?;
        store.try_for_each(&filter, |r| -> Result<()> {
            n += 1;
            writeln!(out, "{}", output::list_line(&r.record))?;
            Ok(())
        })?;
        out.flush()?;
        eprintln!("{n} record{}", if n == 1 { "" } else { "s" });
    }
    out.flush()?;
    Ok(())
}

fn show(ctx: &Ctx, id: &str) -> Result<()> {
    let store = ctx.open()?;
    let id = store.resolve_id(id)?;
    let Some(stored) = store.get(&id)? else {
        if store.is_deleted(&id)? {
            bail!("record {id} was deleted");
        }
        bail!("no record with id {id}; `outpost list` shows the ids");
    };
    if ctx.json {
        let mut v = serde_json::to_value(&stored.record)?;
        if let Value::Object(map) = &mut v {
            map.insert("conflicts".into(), Value::Object(stored.conflicts.clone()));
        }
        outln!("{v}");
    } else {
        out!("{}", output::show_text(&stored.record, &stored.conflicts));
    }
    Ok(())
}

/// What an export was asked for, checked before any record is read.
struct ExportPlan {
    options: ExportOptions,
    filter: Filter,
}

fn export_plan(a: &ExportArgs) -> Result<ExportPlan> {
    let format: Format = a.format.parse().map_err(|m| anyhow!("--format: {m}"))?;
    let mut kind = parse_kind(a.kind.as_deref())?;
    if format == Format::Csv && kind.is_none() {
        kind = Some(Kind::Visit);
        eprintln!(
            "note: CSV holds one kind per file; exporting visits (use --kind course for courses)"
        );
    }
    if a.excel && format != Format::Csv {
        bail!("--excel applies to CSV only; use --format csv --excel");
    }
    if format == Format::Xlsx
        && a.output.is_none()
        && std::io::IsTerminal::is_terminal(&std::io::stdout())
    {
        bail!("XLSX is binary: write it to a file with -o FILE.xlsx");
    }
    let (from, to) = parse_range(&a.range)?;
    Ok(ExportPlan {
        options: ExportOptions {
            format,
            excel: a.excel,
        },
        filter: Filter {
            kind,
            from,
            to,
            site: None,
        },
    })
}

fn export_cmd(ctx: &Ctx, a: ExportArgs) -> Result<()> {
    let plan = export_plan(&a)?;
    let store = ctx.open()?;
    let total = store.count(&plan.filter)?;
    let in_force = ctx.in_force(&store)?;
    write_export(&a, &plan, total, &in_force.catalogue, &mut |sink| {
        store.try_for_each(&plan.filter, |r| sink(r.record))
    })
}

/// A source of records for a streamed export or statistics: calls the sink
/// once per record, in order, and stops at the sink's first error. Records
/// flow one at a time from the store (or the hub's JSONL body) to the
/// writer, so memory stays flat however many there are (DESIGN.md §7).
type Feed<'a> = dyn FnMut(&mut dyn FnMut(Record) -> Result<()>) -> Result<()> + 'a;

/// Writes the records `feed` yields in the planned format to `-o FILE`
/// (atomically) or stdout. `total` sizes the progress bar (0: unknown).
fn write_export(
    a: &ExportArgs,
    plan: &ExportPlan,
    total: u64,
    catalogue: &Catalogue,
    feed: &mut Feed<'_>,
) -> Result<()> {
    let bar = output::progress(total, a.output.is_some());
    let kind = plan.filter.kind;
    let (from, to) = (plan.filter.from, plan.filter.to);
    // `only(kind)` gives an empty export the right header (or sheet).
    let mut run = |out: &mut dyn Write| -> Result<export::ExportSummary> {
        let mut exporter = export::Exporter::new(catalogue, &plan.options, out)?;
        if let Some(k) = kind {
            exporter = exporter.only(k);
        }
        feed(&mut |mut r: Record| {
            bar.inc(1);
            // A course overlapping the range is exported with only the
            // sessions inside it, so an export for March agrees with
            // `stats` for March.
            if let outpost_proto::Body::Course(c) = &mut r.body {
                c.sessions
                    .retain(|s| from.is_none_or(|f| s.date >= f) && to.is_none_or(|t| s.date <= t));
            }
            exporter.write(&r)?;
            Ok(())
        })?;
        Ok(exporter.finish()?)
    };
    match &a.output {
        Some(path) => {
            let summary = write_atomically(path, |file| run(file))?;
            bar.finish_and_clear();
            eprintln!(
                "exported {} to {}",
                output::summary_text(&summary),
                path.display()
            );
        }
        None => {
            let stdout = std::io::stdout();
            let mut lock = std::io::BufWriter::new(stdout.lock());
            run(&mut lock)?;
            lock.flush()?;
            bar.finish_and_clear();
        }
    }
    Ok(())
}

/// Writes `path` through a new temporary file beside it, renamed over it
/// at the end (see `outpost_base::files::replace_atomically`: no symlink
/// followed, no device or pipe replaced, the mode of an existing file
/// kept, new files 0600), so a failed export never leaves half a file.
fn write_atomically<T>(path: &Path, f: impl FnOnce(&mut std::fs::File) -> Result<T>) -> Result<T> {
    outpost_base::files::replace_atomically(path, |file| f(file))
}

fn stats(ctx: &Ctx, a: StatsArgs) -> Result<()> {
    let store = ctx.open()?;
    let (from, to) = parse_range(&a.range)?;
    let filter = Filter {
        kind: None,
        from,
        to,
        site: None,
    };
    let in_force = ctx.in_force(&store)?;
    print_stats(ctx, &a, &in_force, &mut |sink| {
        store.try_for_each(&filter, |r| sink(r.record))
    })
}

fn report_cmd(ctx: &Ctx, a: ReportArgs) -> Result<()> {
    let store = ctx.open()?;
    let org = store.identity().org.clone();
    let filter = Filter {
        kind: None,
        from: chrono::NaiveDate::from_ymd_opt(a.year, 1, 1),
        to: chrono::NaiveDate::from_ymd_opt(a.year, 12, 31),
        site: None,
    };
    let in_force = ctx.in_force(&store)?;
    write_report(&a, &org, &in_force, &mut |sink| {
        store.try_for_each(&filter, |r| sink(r.record))
    })
}

/// Builds the annual report from the records `feed` yields (only counts are
/// kept) and writes it to the output file.
fn write_report(a: &ReportArgs, org: &str, in_force: &InForce, feed: &mut Feed<'_>) -> Result<()> {
    let lang: Lang = a.lang.parse().map_err(|m: String| anyhow!("--lang: {m}"))?;
    if !(2000..=2099).contains(&a.year) {
        bail!(
            "--year {} is outside 2000–2099; write the year as YYYY",
            a.year
        );
    }
    let ext = a
        .output
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let xlsx = match ext.as_str() {
        "html" | "htm" => false,
        "xlsx" => true,
        _ => bail!(
            "{}: the report is written as .xlsx (a summary sheet with charts, the tables and the records, for Excel or LibreOffice) or .html (one file that any browser opens and prints); name the file e.g. report-{}.xlsx",
            a.output.display(),
            a.year
        ),
    };
    let label = central::describe(&in_force.source, org, lang == Lang::En);
    let mut builder = ReportBuilder::new(&in_force.catalogue, &in_force.sites, a.year);
    if xlsx {
        // One pass: each record is counted and written to the records
        // sheets (constant memory) as it comes; the summary and the tables
        // are made from the counts at the end and put in front.
        let (from, to) = (
            NaiveDate::from_ymd_opt(a.year, 1, 1),
            NaiveDate::from_ymd_opt(a.year, 12, 31),
        );
        write_atomically(&a.output, |file| {
            let options = ExportOptions {
                format: Format::Xlsx,
                excel: false,
            };
            let mut exporter = export::Exporter::new(&in_force.catalogue, &options, file)?;
            feed(&mut |mut r| {
                builder.add(&r);
                // As `export` does: a course with only the year's sessions.
                if let outpost_proto::Body::Course(c) = &mut r.body {
                    c.sessions.retain(|s| {
                        from.is_none_or(|f| s.date >= f) && to.is_none_or(|t| s.date <= t)
                    });
                }
                exporter.write(&r)?;
                Ok(())
            })?;
            let report = builder.finish(org, &label);
            exporter.finish_with_sheets_first(report.xlsx_sheets(lang)?)?;
            Ok(())
        })?;
    } else {
        feed(&mut |r| {
            builder.add(&r);
            Ok(())
        })?;
        let report = builder.finish(org, &label);
        let html = report.to_html(lang);
        write_atomically(&a.output, |file| {
            file.write_all(html.as_bytes())?;
            Ok(())
        })?;
    }
    eprintln!(
        "wrote the {} report for {org} to {}",
        a.year,
        a.output.display()
    );
    Ok(())
}

/// Counts the records `feed` yields one by one (the builder keeps only
/// totals per group, never the records) and prints the statistics.
fn print_stats(ctx: &Ctx, a: &StatsArgs, in_force: &InForce, feed: &mut Feed<'_>) -> Result<()> {
    let (from, to) = parse_range(&a.range)?;
    let by = match a.by.as_deref() {
        Some(b) => Grouping::parse_list(b).map_err(|m| anyhow!("--by: {m}"))?,
        None => Vec::new(),
    };
    let mut builder =
        StatsBuilder::new(&in_force.catalogue, from, to, by).with_sites(in_force.sites.clone());
    feed(&mut |r| {
        builder.add(&r);
        Ok(())
    })?;
    let stats = builder.finish();
    if ctx.json {
        outln!("{}", serde_json::to_string_pretty(&stats)?);
    } else {
        out!("{}", stats.to_text());
    }
    Ok(())
}

fn status(ctx: &Ctx) -> Result<()> {
    let store = ctx.open()?;
    let settings = ctx.settings()?;
    let id = store.identity().clone();
    let counts = store.counts()?;
    let sync = store.sync_status()?;
    let enrolled = settings.hub_url.is_some() && store.hub_token()?.is_some();
    let running = outpost_store::instance::is_running(&ctx.paths.data_dir);
    let v = json!({
        "device": id.device,
        "name": store.device_name()?,
        "org": id.org,
        "site": id.site,
        "staff": id.staff,
        "data_dir": ctx.paths.data_dir,
        "hub_url": settings.hub_url,
        "enrolled": enrolled,
        "daemon_running": running,
        "records": counts.records,
        "visits": counts.visits,
        "courses": counts.courses,
        "pending": counts.pending,
        "erased": counts.tombstones,
        "last_sync_attempt": sync.last_attempt,
        "last_sync_success": sync.last_success,
        "last_error": sync.last_error,
        "last_error_kind": sync.last_error_kind,
        "next_step": next_step(&sync, running),
        "ui_url": outpost_store::ui::running_url(&ctx.paths.data_dir),
        "quarantined": store.quarantined()?,
    });
    if ctx.json {
        outln!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        out!("{}", output::status_text(&v));
    }
    Ok(())
}

fn quarantine(ctx: &Ctx, command: crate::args::QuarantineCommand) -> Result<()> {
    use crate::args::QuarantineCommand as Q;
    let mut store = ctx.open()?;
    match command {
        Q::List => {
            let list = store.quarantined()?;
            if ctx.json {
                outln!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.is_empty() {
                eprintln!("no record is quarantined");
            } else {
                for q in &list {
                    outln!("{}  {}  ({}, since {})", q.id, q.reason, q.source, q.at);
                }
                eprintln!(
                    "fix the cause (upgrade Outpost, restore the record) and run `outpost quarantine retry ID`, or `outpost quarantine erase ID` to drop this laptop's copy"
                );
            }
        }
        Q::Retry { id } => {
            store.quarantine_retry(&id)?;
            eprintln!("record {id} is back in use; it syncs at the next sync");
        }
        Q::Erase { id } => {
            store.quarantine_erase(&id)?;
            eprintln!("record {id} was erased on this laptop; the hub keeps its copy");
        }
    }
    Ok(())
}

/// One `doctor` finding: what was checked, whether it is fine, and what
/// to do when not.
fn finding(check: &str, ok: bool, detail: String) -> Value {
    json!({"check": check, "ok": ok, "detail": detail})
}

fn doctor(ctx: &Ctx) -> Result<()> {
    let mut findings = Vec::new();
    let settings = ctx.settings();
    findings.push(match &settings {
        Ok(_) => finding(
            "config",
            true,
            "config.toml and OUTPOST_* settings read".into(),
        ),
        Err(e) => finding(
            "config",
            false,
            format!("{e:#}; fix the file or the variable"),
        ),
    });
    let mut store = ctx.open()?;
    let integrity: String = store
        .connection()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    findings.push(finding(
        "store integrity",
        integrity == "ok",
        if integrity == "ok" {
            "SQLite integrity check passed".into()
        } else {
            format!("SQLite reports damage ({integrity}); restore outpost.db from a backup")
        },
    ));
    let newly = store.check_documents()?;
    let quarantined = store.quarantined()?;
    findings.push(finding(
        "records",
        quarantined.is_empty(),
        if quarantined.is_empty() {
            "every record loads and validates".into()
        } else {
            format!(
                "{} record(s) quarantined ({} found now); see `outpost quarantine list`",
                quarantined.len(),
                newly
            )
        },
    ));
    if let Ok(settings) = &settings {
        findings.push(catalogue_finding(ctx, &store, settings));
        findings.push(match &settings.hub_url {
            None => finding("hub", true, "not enrolled; nothing to reach".into()),
            Some(url) => match hub_clock(url) {
                Ok(skew) if skew.abs() > 300 => finding(
                    "hub",
                    false,
                    format!("{url} answers, but this laptop's clock is {skew} s off the hub's; set the clock"),
                ),
                Ok(_) => finding("hub", true, format!("{url} answers; clocks agree")),
                Err(e) => finding(
                    "hub",
                    false,
                    format!("{url} does not answer ({e:#}); records wait here until it does"),
                ),
            },
        });
    }
    let all_ok = findings.iter().all(|f| f["ok"] == json!(true));
    if ctx.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&json!({"ok": all_ok, "checks": findings}))?
        );
    } else {
        for f in &findings {
            let mark = if f["ok"] != json!(true) {
                "FIX "
            } else if f["warning"] == json!(true) {
                "WARN "
            } else {
                "ok  "
            };
            outln!(
                "{mark}{}: {}",
                f["check"].as_str().unwrap_or(""),
                f["detail"].as_str().unwrap_or("")
            );
        }
    }
    if !all_ok {
        bail!("doctor found problems; each line marked FIX says what to do");
    }
    Ok(())
}

/// The catalogue check: on an enrolled laptop the hub's catalogue is in
/// force and a local file is only warned about (it would count differently
/// from the hub and the other laptops); otherwise the local file must read.
fn catalogue_finding(ctx: &Ctx, store: &Store, settings: &Settings) -> Value {
    let file = central::local_file(settings, &ctx.paths);
    match central::enrolled(store, settings) {
        Err(e) => finding("catalogue", false, format!("{e}")),
        Ok(true) => {
            let org = store.identity().org.clone();
            let in_force = match store.org_config() {
                Ok(Some(c)) => central::describe(&central::hub_source(&c), &org, true),
                Ok(None) => central::describe(&central::Source::HubNotYet, &org, true),
                Err(e) => return finding("catalogue", false, format!("{e}")),
            };
            if file.exists() {
                json!({
                    "check": "catalogue",
                    "ok": true,
                    "warning": true,
                    "detail": format!(
                        "{} is not used: this laptop is enrolled, so the catalogue in force is {in_force}; remove the file, or ask an admin to put its entries on the hub (`outpost admin catalogue set FILE --org {org}`)",
                        file.display()
                    ),
                })
            } else {
                finding("catalogue", true, format!("in force: {in_force}"))
            }
        }
        Ok(false) => match central::local_catalogue(&file) {
            Ok(Some(_)) => finding("catalogue", true, format!("{} reads", file.display())),
            Ok(None) => finding(
                "catalogue",
                true,
                "the built-in catalogue is in force".into(),
            ),
            Err(e) => finding("catalogue", false, format!("{e}; fix the file")),
        },
    }
}

/// Seconds this laptop's clock is ahead of the hub's (from the health
/// answer's `Date` header).
fn hub_clock(url: &str) -> Result<i64> {
    outpost_base::install_crypto_provider();
    let resp = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()?
        .get(format!("{}/v1/health", url.trim_end_matches('/')))
        .send()?;
    let date = resp
        .headers()
        .get(reqwest::header::DATE)
        .and_then(|d| d.to_str().ok())
        .and_then(|d| chrono::DateTime::parse_from_rfc2822(d).ok());
    if !resp.status().is_success() {
        bail!("health answers {}", resp.status());
    }
    Ok(date.map_or(0, |d| chrono::Utc::now().timestamp() - d.timestamp()))
}

/// What the person reading `outpost status` should do about the last sync
/// error, if anything. A "person must act" error's message ends with its
/// remedy (e.g. re-enrol); this line says that it is theirs to do and that
/// the daemon has stopped retrying. A transient error clears by itself.
fn next_step(sync: &SyncStatus, daemon_running: bool) -> Option<String> {
    sync.last_error.as_ref()?;
    Some(match sync.last_error_kind {
        Some(FailureKind::NeedsPerson) => "a person must act, as the last error says; the daemon does not retry until this laptop's token, hub URL or CA file changes (it checks again hourly)".to_string(),
        Some(FailureKind::Transient) | None if daemon_running => {
            "nothing: the daemon retries by itself until the hub can be reached".to_string()
        }
        Some(FailureKind::Transient) | None => {
            "run `outpost sync` when the hub can be reached (or start outpostd to retry by itself)"
                .to_string()
        }
    })
}

fn sync_now(ctx: &Ctx) -> Result<()> {
    let mut store = ctx.open()?;
    let settings = ctx.settings()?;
    let (Some(url), Some(token)) = (settings.hub_url.clone(), store.hub_token()?) else {
        bail!(
            "this laptop is not enrolled with a hub; run `outpost enroll HUB_URL CODE` with a code from your admin"
        );
    };
    let client = HubClient::new(&url, settings.ca_file.as_deref(), Some(token))?;
    let _lock = SyncLock::acquire(&ctx.paths.data_dir).with_context(|| {
        format!(
            "could not lock {} for syncing",
            ctx.paths.data_dir.display()
        )
    })?;
    let pending = store.counts()?.pending;
    let bar = output::progress(pending, true);
    let outcome =
        outpost_store::sync::run(&mut store, &client, SyncOptions::default(), now(), |o| {
            bar.set_position(o.pushed_docs + o.pushed_erasures);
            bar.set_message(format!("pulled {}", o.pulled_docs + o.pulled_erasures));
        })?;
    bar.finish_and_clear();
    let up = client.traffic.up.load(std::sync::atomic::Ordering::Relaxed);
    let down = client
        .traffic
        .down
        .load(std::sync::atomic::Ordering::Relaxed);
    if ctx.json {
        outln!(
            "{}",
            json!({
                "complete": outcome.complete(),
                "pushed": outcome.pushed_docs,
                "pushed_erasures": outcome.pushed_erasures,
                "pulled": outcome.pulled_docs,
                "pulled_erasures": outcome.pulled_erasures,
                "refused": outcome.refused.iter().map(|(id, r)| json!({"id": id, "reason": r})).collect::<Vec<_>>(),
                "requests": outcome.requests,
                "feed_resets": outcome.feed_resets,
                "bytes_up": up,
                "bytes_down": down,
                "error": outcome.error,
                "error_kind": outcome.error_kind,
            })
        );
    } else {
        // The counts are what this laptop applied (see `sync::Session`):
        // after a failure they say what was kept, not what was in flight.
        let lead = if outcome.error.is_some() {
            "before it stopped, this laptop sent and kept"
        } else {
            "sent"
        };
        outln!(
            "{lead} {} record(s) and {} erasure(s); received {} record(s) and {} erasure(s) ({} requests, {} up, {} down)",
            outcome.pushed_docs,
            outcome.pushed_erasures,
            outcome.pulled_docs,
            outcome.pulled_erasures,
            outcome.requests,
            output::bytes(up),
            output::bytes(down)
        );
    }
    if outcome.feed_resets > 0 && !ctx.json {
        eprintln!(
            "the hub's records were restored from a backup; this laptop sent all its records again, so none are lost"
        );
    }
    for (id, reason) in &outcome.refused {
        eprintln!("refused by the hub: {id}: {reason}");
    }
    if let Some(e) = &outcome.error {
        if outcome.error_kind == Some(FailureKind::NeedsPerson) {
            // Running it again will not help; the message says what will.
            bail!("sync did not finish: {e}");
        }
        bail!(
            "sync did not finish: {e}; what was exchanged is kept, run `outpost sync` again to go on"
        );
    }
    if !outcome.refused.is_empty() {
        bail!(
            "the hub refused {} record(s); fix them with `outpost edit` (see above) and sync again",
            outcome.refused.len()
        );
    }
    Ok(())
}

fn enroll(ctx: &Ctx, hub_url: &str, code: &str, name: Option<&str>) -> Result<()> {
    let mut store = ctx.open()?;
    let mut settings = ctx.settings()?;
    let client = HubClient::new(hub_url, settings.ca_file.as_deref(), None)?;
    let previous = settings.hub_url.clone();
    let (device, resp) =
        outpost_store::enrol::enroll(&mut store, &client, code, name, now().timestamp())?;
    if previous.as_deref() != Some(client.base()) && previous.is_some() {
        // A different hub knows nothing of what the old one acknowledged.
        store.reset_sync_state()?;
    }
    settings.hub_url = Some(client.base().to_string());
    settings
        .save(&ctx.paths)
        .with_context(|| format!("could not write {}", ctx.paths.config_file.display()))?;
    if ctx.json {
        outln!(
            "{}",
            json!({"org": resp.org, "hub_url": client.base(), "device": device, "name": store.device_name()?})
        );
    } else {
        eprintln!(
            "enrolled with {} for {} as \"{}\"; the daemon syncs by itself, or run `outpost sync`",
            client.base(),
            resp.org,
            store.device_name()?
        );
    }
    Ok(())
}

/// `outpost rename`: the name is checked here (the hub checks it again)
/// and reaches the hub with the next sync's report.
fn rename(ctx: &Ctx, name: Option<&str>) -> Result<()> {
    let store = ctx.open()?;
    let name = store.set_device_name(name)?;
    if ctx.json {
        outln!("{}", json!({ "name": name }));
    } else {
        eprintln!("this laptop is now called \"{name}\"; the hub learns it at the next sync");
    }
    Ok(())
}

/// The admin token: from `--token-file`, else `OUTPOST_ADMIN_TOKEN`.
fn admin_token(file: Option<&Path>) -> Result<String> {
    let token = match file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("could not read the admin token file {}", path.display()))?,
        None => std::env::var("OUTPOST_ADMIN_TOKEN").map_err(|_| {
            anyhow!(
                "give the admin token in the environment variable OUTPOST_ADMIN_TOKEN or with --token-file FILE (a file only you can read)"
            )
        })?,
    };
    let token = token.trim().to_string();
    if token.is_empty() {
        bail!("the admin token is empty; it is the line `outpostd hub init` printed");
    }
    Ok(token)
}

fn admin(ctx: &Ctx, a: AdminArgs) -> Result<()> {
    let hub = match &a.hub {
        Some(h) => h.clone(),
        None => ctx
            .settings()
            .ok()
            .and_then(|s| s.hub_url)
            .ok_or_else(|| anyhow!("give the hub's URL with --hub URL (or OUTPOST_HUB_URL)"))?,
    };
    let token = admin_token(a.token_file.as_deref())?;
    let client = HubClient::new(&hub, a.ca_file.as_deref(), Some(token))?;
    let get = |path: &str, query: &[(&str, String)]| client.admin(Method::GET, path, query, None);
    match a.command {
        AdminCommand::Org {
            command: OrgCommand::Add { slug, name },
        } => {
            client.admin(
                Method::POST,
                "/v1/admin/orgs",
                &[],
                Some(json!({"slug": slug, "name": name})),
            )?;
            if ctx.json {
                outln!("{}", json!({"org": slug}));
            } else {
                eprintln!("added organisation {slug}");
            }
        }
        AdminCommand::Org {
            command: OrgCommand::List,
        } => {
            let body = get("/v1/admin/orgs", &[])?;
            let orgs: Vec<Value> =
                serde_json::from_slice(&body).context("bad answer from the hub")?;
            if ctx.json {
                outln!("{}", Value::Array(orgs));
            } else {
                for o in orgs {
                    outln!(
                        "{}\t{}",
                        o["slug"].as_str().unwrap_or(""),
                        o["name"].as_str().unwrap_or("")
                    );
                }
            }
        }
        AdminCommand::Invite { org } => {
            let body = client.admin(
                Method::POST,
                "/v1/admin/invites",
                &[],
                Some(json!({"org": org})),
            )?;
            let v: Value = serde_json::from_slice(&body).context("bad answer from the hub")?;
            let code = v["code"]
                .as_str()
                .ok_or_else(|| anyhow!("the hub sent no code"))?;
            ctx.print_made("code", code)?;
        }
        AdminCommand::Devices { org } => {
            let query: Vec<(&str, String)> = org.into_iter().map(|o| ("org", o)).collect();
            let body = get("/v1/admin/devices", &query)?;
            let devices: Vec<Value> =
                serde_json::from_slice(&body).context("bad answer from the hub")?;
            if ctx.json {
                outln!("{}", Value::Array(devices));
            } else {
                out!("{}", output::devices_text(&devices));
            }
        }
        AdminCommand::Revoke { device } => {
            // The hub resolves a prefix or a name among the devices this
            // token may see (one rule, `outpost_proto::device::pick`).
            let body = client.admin(
                Method::POST,
                "/v1/admin/devices/revoke",
                &[],
                Some(json!({ "device": device })),
            )?;
            let d: Value = serde_json::from_slice(&body).context("bad answer from the hub")?;
            if ctx.json {
                outln!("{d}");
            } else {
                eprintln!(
                    "revoked {} ({}); its token no longer works",
                    d["id"].as_str().unwrap_or(&device),
                    d["name"].as_str().unwrap_or("-")
                );
            }
        }
        AdminCommand::Delete { id, org } => {
            let query: Vec<(&str, String)> = org.into_iter().map(|o| ("org", o)).collect();
            client.admin(
                Method::DELETE,
                &format!("/v1/admin/records/{id}"),
                &query,
                None,
            )?;
            eprintln!("erased {id} on the hub; laptops erase it at their next sync");
        }
        AdminCommand::Export(e) => {
            let plan = export_plan(&e.export)?;
            let in_force = hub_in_force(&client, e.org.as_deref())?;
            write_export(&e.export, &plan, 0, &in_force.catalogue, &mut |sink| {
                fetch_records(&client, &plan.filter, e.org.clone(), "export", sink)
            })?;
        }
        AdminCommand::Report(r) => {
            let filter = Filter {
                kind: None,
                from: chrono::NaiveDate::from_ymd_opt(r.report.year, 1, 1),
                to: chrono::NaiveDate::from_ymd_opt(r.report.year, 12, 31),
                site: None,
            };
            let org = r.org.clone();
            let in_force = hub_in_force(&client, Some(org.as_str()))?;
            write_report(&r.report, &org, &in_force, &mut |sink| {
                fetch_records(&client, &filter, Some(org.clone()), "report", sink)
            })?;
        }
        AdminCommand::Stats(s) => {
            let (from, to) = parse_range(&s.stats.range)?;
            let filter = Filter {
                kind: None,
                from,
                to,
                site: None,
            };
            let in_force = hub_in_force(&client, s.org.as_deref())?;
            print_stats(ctx, &s.stats, &in_force, &mut |sink| {
                fetch_records(&client, &filter, s.org.clone(), "stats", sink)
            })?;
        }
        AdminCommand::Catalogue {
            command: CatalogueCommand::Set { file, org },
        } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("could not read {}", file.display()))?;
            // Checked here too, so a typo is named with the file's path.
            Catalogue::builtin().with_overrides(&text, &file.display().to_string())?;
            let body = client.admin(
                Method::PUT,
                "/v1/admin/config/catalogue",
                &[],
                Some(json!({"org": &org, "toml": text})),
            )?;
            let config: OrgConfig =
                serde_json::from_slice(&body).context("bad answer from the hub")?;
            if ctx.json {
                outln!(
                    "{}",
                    json!({"org": org, "catalogue_version": config.catalogue_version})
                );
            } else {
                eprintln!(
                    "the service catalogue of {org} is now version {}; laptops of {org} use it from their next sync",
                    config.catalogue_version
                );
            }
        }
        AdminCommand::Catalogue {
            command: CatalogueCommand::Show { org },
        } => {
            let config = hub_config(&client, Some(org.as_str()))?;
            let catalogue = config.catalogue()?;
            if ctx.json {
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&json!({
                        "org": org,
                        "catalogue_version": config.catalogue_version,
                        "overrides": config.catalogue,
                        "services": catalogue.entries(),
                    }))?
                );
            } else {
                outln!(
                    "# {}",
                    central::describe(&central::hub_source(&config), &org, true)
                );
                for e in catalogue.entries() {
                    outln!("{}\t{}\t{}", e.name, e.agency, e.scope);
                }
            }
        }
        AdminCommand::Sites { command } => {
            let (org, edit) = match command {
                SitesCommand::Add { names, org } => (org, Some(json!({"add": names}))),
                SitesCommand::Remove { names, org } => (org, Some(json!({"remove": names}))),
                SitesCommand::List { org } => (org, None),
            };
            let config = match edit {
                Some(mut body) => {
                    body["org"] = json!(&org);
                    let answer =
                        client.admin(Method::POST, "/v1/admin/config/sites", &[], Some(body))?;
                    serde_json::from_slice(&answer).context("bad answer from the hub")?
                }
                None => hub_config(&client, Some(org.as_str()))?,
            };
            if ctx.json {
                outln!(
                    "{}",
                    json!({"org": org, "version": config.version, "sites": config.sites})
                );
            } else {
                for site in &config.sites {
                    outln!("{site}");
                }
            }
        }
        AdminCommand::Signin => {
            let body = client.admin(Method::POST, "/v1/admin/signin", &[], None)?;
            let v: Value = serde_json::from_slice(&body).context("bad answer from the hub")?;
            let code = v["code"]
                .as_str()
                .ok_or_else(|| anyhow!("the hub sent no code"))?;
            let path = v["path"].as_str().unwrap_or("/dashboard/signin");
            let link = format!("{}{path}", hub.trim_end_matches('/'));
            let minutes = v["expires_in_minutes"].as_i64().unwrap_or(15);
            if ctx.json {
                outln!(
                    "{}",
                    json!({"code": code, "link": link, "expires_in_minutes": minutes})
                );
            } else {
                outln!("{code}");
                outln!("{link}");
                eprintln!(
                    "open the link (or {}/dashboard/signin and type the code) within {minutes} minutes; the code works once",
                    hub.trim_end_matches('/')
                );
            }
        }
        AdminCommand::Token { command } => token_cmd(ctx, &client, command)?,
        AdminCommand::Audit { org } => audit_cmd(ctx, &client, org)?,
    }
    Ok(())
}

/// `outpost admin token …`.
fn token_cmd(ctx: &Ctx, client: &HubClient, command: TokenCommand) -> Result<()> {
    let made = |body: &[u8]| -> Result<()> {
        let v: Value = serde_json::from_slice(body).context("bad answer from the hub")?;
        let token = v["admin_token"]
            .as_str()
            .ok_or_else(|| anyhow!("the hub sent no token"))?;
        if ctx.json {
            outln!("{}", json!({"admin_token": token, "id": v["id"]}));
        } else {
            outln!("{token}");
        }
        Ok(())
    };
    match command {
        TokenCommand::Create {
            name,
            coordinator,
            orgs,
        } => {
            let body = client.admin(
                Method::POST,
                "/v1/admin/tokens",
                &[],
                Some(json!({"name": name, "coordinator": coordinator, "orgs": orgs})),
            )?;
            made(&body)?;
            eprintln!("Keep this token safe: it is shown only once.");
        }
        TokenCommand::List => {
            let body = client.admin(Method::GET, "/v1/admin/tokens", &[], None)?;
            let list: Vec<Value> =
                serde_json::from_slice(&body).context("bad answer from the hub")?;
            if ctx.json {
                outln!("{}", Value::Array(list));
            } else {
                out!("{}", output::tokens_text(&list));
            }
        }
        TokenCommand::Revoke { id } => {
            let body = client.admin(
                Method::POST,
                &format!("/v1/admin/tokens/{id}/revoke"),
                &[],
                None,
            )?;
            let v: Value = serde_json::from_slice(&body).context("bad answer from the hub")?;
            if ctx.json {
                outln!("{v}");
            }
            eprintln!(
                "revoked token {} ({}); it no longer works",
                v["id"].as_str().unwrap_or(&id),
                v["name"].as_str().unwrap_or("")
            );
        }
        TokenCommand::Rotate { id } => {
            let body = client.admin(
                Method::POST,
                &format!("/v1/admin/tokens/{id}/rotate"),
                &[],
                None,
            )?;
            made(&body)?;
            eprintln!(
                "The token's old secret no longer works; give the holder this one (shown only once)."
            );
        }
    }
    Ok(())
}

/// `outpost admin audit`: the entries, then the hub's verdict on the
/// whole chain; a broken chain is an error (non-zero exit) naming where.
fn audit_cmd(ctx: &Ctx, client: &HubClient, org: Option<String>) -> Result<()> {
    let query: Vec<(&str, String)> = org.into_iter().map(|o| ("org", o)).collect();
    let body = client.admin(Method::GET, "/v1/admin/audit", &query, None)?;
    let answer: Value = serde_json::from_slice(&body).context("bad answer from the hub")?;
    let entries = answer["entries"].as_array().cloned().unwrap_or_default();
    let verdict = &answer["verdict"];
    if ctx.json {
        outln!("{answer}");
    } else {
        out!("{}", output::audit_text(&entries));
    }
    if verdict["intact"].as_bool() != Some(true) {
        bail!(
            "the audit log is broken at entry {}: {}. Restore the hub's database from a backup taken before, or keep this copy as evidence and ask whoever can reach the database",
            verdict["broken_at"],
            verdict["problem"].as_str().unwrap_or("unknown problem")
        );
    }
    eprintln!(
        "audit log verified: {} entries, none edited, removed or reordered",
        verdict["entries"]
    );
    Ok(())
}

/// An org's configuration on the hub. Without an org, the one the token
/// is scoped to, or the only org it may see.
fn hub_config(client: &HubClient, org: Option<&str>) -> Result<OrgConfig> {
    let query: Vec<(&str, String)> = org.into_iter().map(|o| ("org", o.to_string())).collect();
    let body = client.admin(Method::GET, "/v1/admin/config", &query, None)?;
    serde_json::from_slice(&body).context("bad answer from the hub")
}

/// The catalogue and site list the hub holds for `org`, for counting the
/// hub's records as its laptops do. Without `--org` over a hub-wide token
/// that sees several organisations there is no one catalogue: the
/// built-in one counts, and the admin is told so.
fn hub_in_force(client: &HubClient, org: Option<&str>) -> Result<InForce> {
    let org = match org {
        Some(o) => Some(o.to_string()),
        None => {
            let body = client.admin(Method::GET, "/v1/admin/orgs", &[], None)?;
            let orgs: Vec<Value> =
                serde_json::from_slice(&body).context("bad answer from the hub")?;
            match orgs.as_slice() {
                [one] => one["slug"].as_str().map(str::to_string),
                _ => None,
            }
        }
    };
    let Some(org) = org else {
        eprintln!(
            "note: several organisations, so services are resolved with the built-in catalogue and sites counted as typed; give --org ORG to count with an organisation's own catalogue and site list"
        );
        return Ok(InForce {
            catalogue: Catalogue::builtin(),
            sites: SiteList::default(),
            source: central::Source::Builtin,
            ignored_file: None,
        });
    };
    let config = hub_config(client, Some(org.as_str()))?;
    Ok(InForce {
        catalogue: config.catalogue()?,
        sites: config.site_list(),
        source: central::hub_source(&config),
        ignored_file: None,
    })
}

/// The hub's merged records (JSONL), filtered on the hub, handed to `sink`
/// line by line as the body arrives: an export of the whole hub is never
/// held in memory on either side.
fn fetch_records(
    client: &HubClient,
    filter: &Filter,
    org: Option<String>,
    purpose: &str,
    sink: &mut dyn FnMut(Record) -> Result<()>,
) -> Result<()> {
    use std::io::BufRead;
    // The hub's audit log records what the records were read for.
    let mut query: Vec<(&str, String)> = vec![("purpose", purpose.to_string())];
    if let Some(k) = filter.kind {
        query.push(("kind", k.as_str().to_string()));
    }
    if let Some(f) = filter.from {
        query.push(("from", f.to_string()));
    }
    if let Some(t) = filter.to {
        query.push(("to", t.to_string()));
    }
    if let Some(o) = org {
        query.push(("org", o));
    }
    let body = client.admin_stream(Method::GET, "/v1/admin/records", &query)?;
    let mut reader = std::io::BufReader::with_capacity(64 * 1024, body);
    let mut line = Vec::new();
    let mut n = 0usize;
    loop {
        line.clear();
        let read = reader
            .read_until(b'\n', &mut line)
            .context("the connection to the hub broke during the export; run it again")?;
        if read == 0 {
            break;
        }
        n += 1;
        let text = line.trim_ascii();
        if text.is_empty() {
            continue;
        }
        let record: Record = serde_json::from_slice(text)
            .with_context(|| format!("the hub sent a bad record on line {n}"))?;
        sink(record)?;
    }
    Ok(())
}

fn import_cmd(ctx: &Ctx, a: ImportArgs) -> Result<()> {
    let mut store = ctx.open()?;
    let format = outpost_cli::import::ImportFormat::detect(a.format.as_deref(), &a.file)?;
    let parsed = outpost_cli::import::parse_file(&a.file, format, store.identity(), now())?;
    for sheet in &parsed.skipped_sheets {
        eprintln!("sheet '{sheet}' was skipped: its first row names no record column");
    }
    for bad in &parsed.bad {
        eprintln!("{}: {}", bad.place, bad.problems.join("; "));
    }
    if !parsed.bad.is_empty() && !a.skip_invalid {
        bail!(
            "nothing was imported: {} row(s) have problems (listed above); fix them, or use --skip-invalid to import the {} valid record(s)",
            parsed.bad.len(),
            parsed.records.len()
        );
    }
    // One transaction: the import lands whole or not at all.
    let inserted = store.insert_records(&parsed.records)?;
    let existing = parsed.records.len() - inserted;
    if ctx.json {
        outln!(
            "{}",
            json!({"imported": inserted, "already_present": existing, "invalid": parsed.bad, "skipped_sheets": parsed.skipped_sheets})
        );
    } else {
        eprintln!(
            "imported {inserted} record(s) from {}; {existing} were already here (or erased) and were left as they are{}",
            a.file.display(),
            if parsed.bad.is_empty() {
                String::new()
            } else {
                format!("; {} invalid row(s) skipped", parsed.bad.len())
            }
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_with(error: Option<&str>, kind: Option<FailureKind>) -> SyncStatus {
        SyncStatus {
            last_error: error.map(str::to_string),
            last_error_kind: kind,
            ..SyncStatus::default()
        }
    }

    #[test]
    fn status_says_who_must_act_on_the_last_error() {
        assert_eq!(next_step(&status_with(None, None), true), None);
        let revoked = "this laptop's token was not accepted by the hub (revoked): ask an admin for a new enrolment code and run `outpost enroll HUB_URL CODE`";
        let step = next_step(
            &status_with(Some(revoked), Some(FailureKind::NeedsPerson)),
            true,
        )
        .unwrap();
        assert!(step.starts_with("a person must act"), "{step}");
        assert!(step.contains("does not retry"), "{step}");
        let step = next_step(
            &status_with(
                Some("could not reach the hub"),
                Some(FailureKind::Transient),
            ),
            true,
        )
        .unwrap();
        assert!(step.contains("retries by itself"), "{step}");
        // An old status without a kind, and no daemon: sync by hand.
        let step = next_step(&status_with(Some("could not reach the hub"), None), false).unwrap();
        assert!(step.contains("`outpost sync`"), "{step}");
        // The text form shows the error and the step under it.
        let text = output::status_text(&json!({
            "last_error": revoked,
            "next_step": "a person must act, as the last error says",
        }));
        assert!(
            text.contains(&format!("last error:    {revoked}")),
            "{text}"
        );
        assert!(
            text.contains("to do:         a person must act, as the last error says"),
            "{text}"
        );
    }
}
