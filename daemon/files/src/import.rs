//! Reading records back from the files [`crate::export`] writes, and from
//! what offices have made of them: rows out of CSV, JSONL or XLSX, each
//! column mapped to a field of the field table, each cell turned into the
//! raw value of its field. Nothing here validates, screens or writes a
//! record: the caller (`outpost import`) fills what the laptop knows
//! (organisation, device, site, staff, timestamps) and validates each row
//! like `visit add`.
//!
//! Writer and reader live in one crate so they agree: the cell formats are
//! the export's ([`export::split_list`], [`export::parse_barriers`],
//! [`export::excel_uncell`]), and the column names come from
//! `outpost_proto::schema`'s field table.
//!
//! # What is read
//!
//! - **CSV** in UTF-8 (with or without a byte order mark), UTF-16 with a
//!   byte order mark (Excel's "Unicode text"), or else Windows-1252 (what
//!   Swedish Excel saves as "CSV (semikolonavgränsad)"). The separator is
//!   the one of `,` `;` tab found most often in the header line. A
//!   `;`-separated file is taken for an `--excel` export, so the apostrophe
//!   the export put before formula-like cells is removed.
//! - **JSONL**: one record object per line (the export and `list --json`).
//! - **XLSX**: every sheet whose first row names record columns (the
//!   export's "Visits" and "Courses", however ordered or renamed); a sheet
//!   whose first row names none is someone's notes and is skipped. Cells
//!   may be text, numbers, dates (date cells or bare date serials), times,
//!   booleans or missing, as Excel and LibreOffice save an edited sheet.
//!
//! Headers are matched by column name or by the field's Swedish or English
//! label ([`schema::column_field`]), in any case and spacing. An unknown
//! header, two headers for one field, a header-less column with values, or
//! a missing column of a required field is a [`MappingError`] naming the
//! header, the closest known name and every accepted name: nothing of the
//! file is imported.
//!
//! # Bounds
//!
//! A file larger than [`MAX_FILE_BYTES`] is refused before it is read. An
//! XLSX is a zip: before the spreadsheet reader opens it, every part is
//! inflated into nothing (counted, not kept), and a workbook that unpacks
//! to more than [`MAX_UNPACKED_BYTES`] or has more than [`MAX_PARTS`]
//! parts is refused, so a zip bomb costs time bounded by that limit and no
//! memory; so is a shared-strings part claiming more strings than its
//! size can hold (the reader reserves room for them up front). Sheets and
//! CSV files are read row by row and only each row's fields are kept (the
//! declared `<dimension>` is never used to allocate); a value beyond
//! [`MAX_ROWS`] rows or [`MAX_COLUMNS`] columns, or more than
//! [`MAX_CELLS`] values in a file, is refused. A panic in the spreadsheet
//! reader is caught and refuses the file.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::{Cursor, Read};

use calamine::{DataRef, Reader, Xlsx};
use chrono::{Duration, NaiveDate, NaiveDateTime, Timelike};
use outpost_proto::fields::Fields;
use outpost_proto::input;
use outpost_proto::record::Kind;
use outpost_proto::schema::{self, Column, Presence, Scope, Shape};
use serde_json::{Value, json};

use crate::export;

/// Largest file an import reads (any format): an export of 100,000 visits
/// is some 30 MB as CSV and a tenth of that as XLSX.
pub const MAX_FILE_BYTES: u64 = 100 * 1024 * 1024;
/// Most bytes the parts of an XLSX may unpack to, all parts together.
pub const MAX_UNPACKED_BYTES: u64 = 400 * 1024 * 1024;
/// Most parts (files inside the zip) of an XLSX.
pub const MAX_PARTS: usize = 10_000;
/// Most rows of a sheet (Excel's own limit).
pub const MAX_ROWS: u32 = 1_048_576;
/// Most columns of a sheet an import reads; the export has under 30.
pub const MAX_COLUMNS: u32 = 256;
/// Most values (non-empty cells) of a CSV or XLSX file: what is imported
/// is kept until it is written, so this bounds memory (an export of
/// 100,000 visits has about 1.5 million).
pub const MAX_CELLS: usize = 3_000_000;

/// Namespace for session ids made from the content of rows that had none.
const IMPORT_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x6f75_7470_6f73_745f_696d_706f_7274_0001);

/// The format of a file to import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Csv,
    Jsonl,
    Xlsx,
}

impl Source {
    /// `--format` if given, else the file name's extension.
    pub fn detect(given: Option<&str>, file_name: &std::path::Path) -> Result<Source, ImportError> {
        let name = match given {
            Some(f) => f.trim().to_lowercase(),
            None => file_name
                .extension()
                .map(|e| e.to_string_lossy().to_lowercase())
                .unwrap_or_default(),
        };
        match name.as_str() {
            "csv" | "txt" => Ok(Source::Csv),
            "jsonl" | "ndjson" => Ok(Source::Jsonl),
            "xlsx" => Ok(Source::Xlsx),
            _ => Err(ImportError::Format {
                given: given.is_some(),
                name,
            }),
        }
    }
}

/// Where a row was in the file: a line (CSV, JSONL) or a sheet's row.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Place {
    /// The sheet's name, for an XLSX row.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sheet: Option<String>,
    /// The line (CSV, JSONL) or the sheet's row number as the spreadsheet
    /// shows it, from 1.
    pub line: usize,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.sheet {
            Some(sheet) => write!(f, "sheet '{sheet}' row {}", self.line),
            None => write!(f, "line {}", self.line),
        }
    }
}

/// One record's raw fields (not yet validated), or what is wrong with its
/// row.
pub type Row = (Place, Result<Fields, Vec<String>>);

/// Why a file could not be read at all; nothing of it is imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(
        "{} '{name}' is not a format outpost can import; give --format csv, jsonl or xlsx",
        if *given { "format" } else { "file type" }
    )]
    Format { given: bool, name: String },
    #[error(
        "the file is {size} bytes, more than the {MAX_FILE_BYTES} an import reads; split it (e.g. one file per year) and import the parts"
    )]
    TooLarge { size: u64 },
    #[error(
        "this is not an XLSX workbook ({reason}); open it in Excel or LibreOffice and save it as .xlsx (Excel 2007-365), or as CSV"
    )]
    NotXlsx { reason: String },
    #[error(
        "the workbook unpacks to more than {MAX_UNPACKED_BYTES} bytes or {MAX_PARTS} parts, far more than a sheet of records; it is refused (it may be damaged or made to exhaust memory)"
    )]
    Unpacked,
    #[error(
        "sheet '{sheet}' has a value in cell {cell}, outside the {MAX_ROWS} rows and {MAX_COLUMNS} columns an import reads; delete what lies outside the table and save again"
    )]
    OutOfBounds { sheet: String, cell: String },
    #[error(
        "the file has more than {MAX_CELLS} values, more than an import reads; split it and import the parts"
    )]
    TooManyCells,
    #[error("the CSV file cannot be read: {0}")]
    Csv(String),
    #[error(
        "the file has no header row; the first row must name the columns (e.g. as an export from outpost does)"
    )]
    NoHeader,
    #[error(transparent)]
    Mapping(#[from] MappingError),
}

/// The headers of a file do not map onto the record's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingError {
    /// The sheet, for XLSX.
    pub sheet: Option<String>,
    /// The kind of record the columns looked most like.
    pub kind: Kind,
    pub problems: Vec<MappingProblem>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MappingProblem {
    /// A header no column has; with the closest known name, if any.
    Unknown {
        header: String,
        closest: Option<&'static str>,
    },
    /// Two headers name one field.
    Duplicate { first: String, second: String },
    /// A column with values but no header (its letter or number).
    Unnamed { column: String },
    /// A required field has no column.
    Missing { column: &'static str },
}

impl std::error::Error for MappingError {}

impl fmt::Display for MappingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the column headers do not match a {} file", self.kind)?;
        if let Some(sheet) = &self.sheet {
            write!(f, " (sheet '{sheet}')")?;
        }
        f.write_str(": ")?;
        let problems: Vec<String> = self
            .problems
            .iter()
            .map(|p| match p {
                MappingProblem::Unknown { header, closest } => match closest {
                    Some(c) => format!("unknown column '{header}'; did you mean '{c}'?"),
                    None => format!("unknown column '{header}'"),
                },
                MappingProblem::Duplicate { first, second } => {
                    format!("columns '{first}' and '{second}' are the same field")
                }
                MappingProblem::Unnamed { column } => {
                    format!("column {column} has values but no header")
                }
                MappingProblem::Missing { column } => {
                    format!("the required column '{column}' is missing")
                }
            })
            .collect();
        f.write_str(&problems.join("; "))?;
        write!(
            f,
            ". Nothing was imported. Name each column as the export does or by its Swedish or English label (any case); a {} file takes: {}",
            self.kind,
            accepted_names(self.kind)
        )
    }
}

/// Every accepted header of a kind: `name (Svensk etikett, English label)`.
pub fn accepted_names(kind: Kind) -> String {
    schema::columns(kind)
        .iter()
        .filter(|c| !c.derived)
        .map(|c| format!("{} ({}, {})", c.name, c.field.label.sv, c.field.label.en))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a file holds.
#[derive(Debug, Default)]
pub struct Rows {
    /// Every row, in file order (sheet by sheet). The rows of one course
    /// (one row per session) are gathered into one.
    pub rows: Vec<Row>,
    /// Sheets skipped because their first row names no record column
    /// (notes, charts), so the caller can say so.
    pub skipped_sheets: Vec<String>,
}

/// Reads a file's rows; see the module docs.
pub fn read(bytes: &[u8], source: Source) -> Result<Rows, ImportError> {
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(ImportError::TooLarge {
            size: bytes.len() as u64,
        });
    }
    let rows = match source {
        Source::Jsonl => jsonl_rows(&decode(bytes)),
        Source::Csv => csv_rows(&decode(bytes))?,
        Source::Xlsx => return xlsx_rows(bytes),
    };
    Ok(Rows {
        rows,
        skipped_sheets: Vec::new(),
    })
}

/// Text in UTF-8 (a byte order mark or none) or UTF-16 (with its byte
/// order mark), else Windows-1252: bytes that are not valid UTF-8 are
/// almost surely what Swedish Windows saves, and every byte is a character
/// there, so decoding never fails.
pub fn decode(bytes: &[u8]) -> Cow<'_, str> {
    if let Some((encoding, bom)) = encoding_rs::Encoding::for_bom(bytes) {
        let (text, _) = encoding.decode_without_bom_handling(&bytes[bom..]);
        return text;
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => {
            let (text, _) = encoding_rs::WINDOWS_1252.decode_without_bom_handling(bytes);
            text
        }
    }
}

fn jsonl_rows(text: &str) -> Vec<Row> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let row = match serde_json::from_str::<Value>(l) {
                Ok(Value::Object(map)) => {
                    // `show --json` adds conflicts; they are not a field.
                    Ok(map.into_iter().filter(|(k, _)| k != "conflicts").collect())
                }
                Ok(_) => Err(vec!["the line is not a JSON object".to_string()]),
                Err(e) => Err(vec![format!("not valid JSON: {e}")]),
            };
            (
                Place {
                    sheet: None,
                    line: i + 1,
                },
                row,
            )
        })
        .collect()
}

/// The separator of a CSV: whichever of `,` `;` tab the header line has
/// most of, outside quotes (`,` on a tie).
fn delimiter(text: &str) -> u8 {
    let first = text.lines().next().unwrap_or("");
    let mut counts = [0usize; 3];
    let mut quoted = false;
    for c in first.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => counts[0] += 1,
            ';' if !quoted => counts[1] += 1,
            '\t' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    let candidates = [b',', b';', b'\t'];
    let mut best = 0;
    for i in 1..3 {
        if counts[i] > counts[best] {
            best = i;
        }
    }
    candidates[best]
}

fn csv_rows(text: &str) -> Result<Vec<Row>, ImportError> {
    let delimiter = delimiter(text);
    // `--excel` exports use `;`, as Swedish Excel does.
    let excel = delimiter == b';';
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(false)
        .has_headers(false)
        .from_reader(text.as_bytes());
    let mut records = reader.records();
    let header: Vec<Cell> = match records.next() {
        Some(Ok(h)) => h.iter().map(|c| Cell::Text(c.to_string())).collect(),
        Some(Err(e)) => return Err(ImportError::Csv(e.to_string())),
        None => return Err(ImportError::NoHeader),
    };
    let mut table = TableReader::new(None, &header);
    let mut cells = 0;
    // Row by row: only the rows' fields are kept, never the file's cells.
    for rec in records {
        match rec {
            Ok(r) => {
                let line = r.position().map_or(0, |p| p.line() as usize);
                table.row(
                    line,
                    r.iter().enumerate().filter_map(|(i, c)| {
                        let c = if excel { export::excel_uncell(c) } else { c };
                        (!c.trim().is_empty()).then(|| (i, Cell::Text(c.to_string())))
                    }),
                    &mut cells,
                )?;
            }
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line() as usize);
                table.bad_row(line, format!("not a valid CSV row: {e}"));
            }
        }
    }
    Ok(table.finish()?)
}

/// A cell as a file holds it, before it is read as a field's value.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Text(String),
    Number(f64),
    /// A date or time cell: the date and time it shows.
    DateTime(NaiveDateTime),
    Bool(bool),
    /// A cell showing an error (`#N/A`, `#VALUE!`).
    Error(String),
    Empty,
}

impl Cell {
    fn is_empty(&self) -> bool {
        match self {
            Cell::Empty => true,
            Cell::Text(s) => s.trim().is_empty(),
            _ => false,
        }
    }
}

/// A column's letters as a spreadsheet shows them (0 → A, 26 → AA).
fn column_letters(mut col: u32) -> String {
    let mut out = Vec::new();
    loop {
        out.push(b'A' + (col % 26) as u8);
        if col < 26 {
            break;
        }
        col = col / 26 - 1;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// A header cell as text.
fn header_text(cell: &Cell) -> String {
    match cell {
        Cell::Text(s) => s.trim().to_string(),
        Cell::Empty => String::new(),
        other => plain_text(other),
    }
}

/// The mapping of a header onto one kind's columns.
struct Mapping {
    kind: Kind,
    columns: Vec<Option<Column>>,
    problems: Vec<MappingProblem>,
}

fn mapping(kind: Kind, header: &[Cell]) -> Mapping {
    let mut columns = Vec::new();
    let mut problems = Vec::new();
    let mut seen: HashMap<&'static str, String> = HashMap::new();
    let candidates: Vec<&'static str> = schema::columns(kind)
        .iter()
        .filter(|c| !c.derived)
        // Swedish first: on a tie (`Datm` is as near `Datum` as `date`)
        // the suggestion is the Swedish label.
        .flat_map(|c| [c.field.label.sv, c.field.label.en, c.name])
        .collect();
    for name in header.iter().map(header_text) {
        if name.is_empty() {
            // A header-less column is stray formatting unless it holds
            // values, which the rows tell ([`TableReader::row`]).
            columns.push(None);
            continue;
        }
        match schema::column_field(kind, &name) {
            Some(col) => {
                if let Some(first) = seen.get(col.name) {
                    problems.push(MappingProblem::Duplicate {
                        first: first.clone(),
                        second: name.clone(),
                    });
                } else {
                    seen.insert(col.name, name.clone());
                }
                columns.push(Some(col));
            }
            None => {
                problems.push(MappingProblem::Unknown {
                    closest: input::closest(&name, candidates.iter().copied()),
                    header: name,
                });
                columns.push(None);
            }
        }
    }
    for col in schema::columns(kind) {
        // The kind's own required fields; the common ones (id, site,
        // staff, …) are filled by the importer, and a course's session
        // fields are required of a session, not of a file.
        let own = !matches!(col.field.scope, Scope::Common | Scope::Session);
        if own
            && !col.derived
            && col.field.presence == Presence::Required
            && !seen.contains_key(col.name)
        {
            problems.push(MappingProblem::Missing { column: col.name });
        }
    }
    Mapping {
        kind,
        columns,
        problems,
    }
}

/// Which kind a header is of: a course column the visit columns lack (e.g.
/// `title`) makes it courses, unless it maps worse than visits.
fn best_mapping(header: &[Cell]) -> Mapping {
    let visits = mapping(Kind::Visit, header);
    let courses = mapping(Kind::Course, header);
    let course_only = courses
        .columns
        .iter()
        .flatten()
        .any(|c| matches!(c.field.scope, Scope::Course | Scope::Session));
    if course_only && courses.problems.len() < visits.problems.len() {
        courses
    } else {
        visits
    }
}

/// Turns a table's rows into records' fields as they are read, keeping
/// only the fields (a row's cells are dropped once read), so memory
/// follows what is imported, not the size or shape of the file.
struct TableReader {
    sheet: Option<String>,
    mapping: Mapping,
    /// Whether each header cell has a name.
    named: Vec<bool>,
    /// Columns without a header that hold values.
    stray: std::collections::BTreeSet<usize>,
    rows: Vec<Row>,
    /// Course rows are sessions; rows of one course id are gathered.
    courses: BTreeMap<String, (usize, Fields, Vec<Value>)>,
}

impl TableReader {
    fn new(sheet: Option<String>, header: &[Cell]) -> TableReader {
        TableReader {
            sheet,
            mapping: best_mapping(header),
            named: header.iter().map(|c| !header_text(c).is_empty()).collect(),
            stray: Default::default(),
            rows: Vec::new(),
            courses: BTreeMap::new(),
        }
    }

    /// How many columns of the header are record columns.
    fn known(&self) -> usize {
        self.mapping.columns.iter().flatten().count()
    }

    fn place(&self, line: usize) -> Place {
        Place {
            sheet: self.sheet.clone(),
            line,
        }
    }

    fn bad_row(&mut self, line: usize, problem: String) {
        self.rows.push((self.place(line), Err(vec![problem])));
    }

    /// One row's non-empty cells, by column index. `cells` counts the
    /// values read so far, against [`MAX_CELLS`].
    fn row(
        &mut self,
        line: usize,
        row: impl IntoIterator<Item = (usize, Cell)>,
        cells: &mut usize,
    ) -> Result<(), ImportError> {
        let kind = self.mapping.kind;
        let mut f = Fields::new();
        f.insert("kind".into(), json!(kind.as_str()));
        let mut session = serde_json::Map::new();
        let mut problems = Vec::new();
        let mut any = false;
        for (i, cell) in row {
            // A blank cell (Excel and LibreOffice keep some) is no value.
            if cell.is_empty() {
                continue;
            }
            any = true;
            *cells += 1;
            if *cells > MAX_CELLS {
                return Err(ImportError::TooManyCells);
            }
            let col = match self.mapping.columns.get(i) {
                Some(Some(col)) => col,
                // An unknown header is already a mapping problem.
                Some(None) if self.named[i] => continue,
                _ => {
                    self.stray.insert(i);
                    continue;
                }
            };
            // Derived columns (agencies) are for reading.
            if col.derived {
                continue;
            }
            let value = cell_text(col.field.shape, &cell).and_then(|text| match text {
                Some(t) => cell_value(col.field.shape, &t).map(Some),
                None => Ok(None),
            });
            match value {
                Ok(None) => {}
                Ok(Some(v)) => {
                    if col.field.scope == Scope::Session {
                        session.insert(col.field.name.into(), v);
                    } else {
                        f.insert(col.field.name.into(), v);
                    }
                }
                Err(e) => problems.push(format!("{}: {e}", col.field.name)),
            }
        }
        // A blank row is no record.
        if !any {
            return Ok(());
        }
        if !problems.is_empty() {
            self.rows.push((self.place(line), Err(problems)));
            return Ok(());
        }
        match kind {
            Kind::Visit => self.rows.push((self.place(line), Ok(f))),
            Kind::Course => {
                let text = |name: &str| f.get(name).and_then(Value::as_str).map(str::to_string);
                let key = text("id").unwrap_or_else(|| {
                    // No id: one course per (title, site, partner).
                    format!("{:?}", (text("title"), text("site"), text("partner")))
                });
                let entry = self
                    .courses
                    .entry(key)
                    .or_insert_with(|| (line, f, Vec::new()));
                // The course's row is its first in the file (rows may have
                // been sorted in a spreadsheet).
                entry.0 = entry.0.min(line);
                // A row with session cells but no session date is still a
                // session, so validation names what it lacks.
                if !session.is_empty() {
                    entry.2.push(Value::Object(session));
                }
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<Vec<Row>, MappingError> {
        let TableReader {
            sheet,
            mapping,
            named: _,
            stray,
            mut rows,
            courses,
        } = self;
        let mut problems = mapping.problems;
        for i in stray {
            let column = if sheet.is_some() {
                column_letters(i as u32)
            } else {
                format!("{}", i + 1)
            };
            problems.push(MappingProblem::Unnamed { column });
        }
        if !problems.is_empty() {
            return Err(MappingError {
                sheet,
                kind: mapping.kind,
                problems,
            });
        }
        for (_, (line, mut f, sessions)) in courses {
            let sessions = sessions
                .into_iter()
                .map(|mut s| {
                    if let Value::Object(m) = &mut s
                        && !m.contains_key("id")
                    {
                        let id = uuid::Uuid::new_v5(
                            &IMPORT_NAMESPACE,
                            Value::Object(m.clone()).to_string().as_bytes(),
                        );
                        m.insert("id".into(), json!(id.to_string()));
                    }
                    s
                })
                .collect();
            f.insert("sessions".into(), Value::Array(sessions));
            rows.push((
                Place {
                    sheet: sheet.clone(),
                    line,
                },
                Ok(f),
            ));
        }
        rows.sort_by_key(|(place, _)| place.line);
        Ok(rows)
    }
}

/// A cell as the text of a field of `shape` (the export's cell format), or
/// `None` for an empty cell. Spreadsheets turn typed cells into numbers,
/// dates and booleans; each is read back as the text the export wrote.
fn cell_text(shape: Shape, cell: &Cell) -> Result<Option<String>, String> {
    let text = match (shape, cell) {
        (_, Cell::Empty) => return Ok(None),
        (_, Cell::Error(e)) => return Err(format!("the cell shows the error {e}")),
        (_, Cell::Text(s)) => {
            let s = s.trim();
            if s.is_empty() {
                return Ok(None);
            }
            match shape {
                // LibreOffice may write a whole number as `45,0`.
                Shape::Int { .. } => whole_number_text(s).unwrap_or(s).to_string(),
                // Swedish Excel writes booleans in CSV as SANT/FALSKT.
                Shape::Bool => match s.to_lowercase().as_str() {
                    "sant" => "true".into(),
                    "falskt" => "false".into(),
                    _ => s.to_string(),
                },
                _ => s.to_string(),
            }
        }
        (Shape::Date, Cell::Number(n)) => serial_date(*n)
            .ok_or_else(|| format!("the number {n} is not a date"))?
            .date()
            .format("%Y-%m-%d")
            .to_string(),
        (Shape::Date, Cell::DateTime(dt)) => dt.date().format("%Y-%m-%d").to_string(),
        (Shape::Time, Cell::Number(n)) if (0.0..1.0).contains(n) => serial_date(*n)
            .ok_or_else(|| format!("the number {n} is not a time"))?
            .format("%H:%M")
            .to_string(),
        (Shape::Time, Cell::DateTime(dt)) => dt.format("%H:%M").to_string(),
        (Shape::Timestamp, Cell::DateTime(dt)) => dt.format("%Y-%m-%dT%H:%M:%S").to_string(),
        (Shape::Bool, Cell::Number(n)) if *n == 0.0 || *n == 1.0 => {
            (if *n == 1.0 { "true" } else { "false" }).to_string()
        }
        (_, other) => plain_text(other),
    };
    Ok(Some(text))
}

/// `45,0` or `45.0` as `45`; `None` for anything else.
fn whole_number_text(s: &str) -> Option<&str> {
    let (whole, fraction) = s.split_once([',', '.'])?;
    (!whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && !fraction.is_empty()
        && fraction.bytes().all(|b| b == b'0'))
    .then_some(whole)
}

/// A typed cell as text for a text field: whole numbers without `.0`.
fn plain_text(cell: &Cell) -> String {
    match cell {
        Cell::Text(s) => s.trim().to_string(),
        Cell::Number(n) if n.fract() == 0.0 && n.abs() < 1e15 => format!("{}", *n as i64),
        Cell::Number(n) => n.to_string(),
        Cell::DateTime(dt) if dt.time().num_seconds_from_midnight() == 0 => {
            dt.date().format("%Y-%m-%d").to_string()
        }
        Cell::DateTime(dt) => dt.format("%Y-%m-%d %H:%M").to_string(),
        Cell::Bool(b) => b.to_string(),
        Cell::Error(e) => e.clone(),
        Cell::Empty => String::new(),
    }
}

/// A spreadsheet date serial (days since 1899-12-30, the fraction the time
/// of day) as a date and time, to the minute; `None` outside 1900–9999.
fn serial_date(n: f64) -> Option<NaiveDateTime> {
    if !n.is_finite() || !(0.0..2_958_466.0).contains(&n) {
        return None;
    }
    let minutes = (n * 24.0 * 60.0).round() as i64;
    let epoch = NaiveDate::from_ymd_opt(1899, 12, 30)?.and_hms_opt(0, 0, 0)?;
    epoch.checked_add_signed(Duration::minutes(minutes))
}

/// A cell's text as the raw value of a field of `shape`: lists are split at
/// `|` (barriers read back from `SERVICE:KIND[:NOTE]`), anything else stays
/// text for validation to check.
fn cell_value(shape: Shape, cell: &str) -> Result<Value, String> {
    Ok(match shape {
        Shape::TextList { .. } | Shape::EnumList(_) => json!(export::split_list(cell)),
        Shape::Barriers => {
            serde_json::to_value(export::parse_barriers(cell)?).unwrap_or(Value::Null)
        }
        _ => json!(cell),
    })
}

/// Checks an XLSX's zip before it is opened: at most [`MAX_PARTS`] parts,
/// unpacking to at most [`MAX_UNPACKED_BYTES`] altogether. Every part is
/// inflated into a counter, not into memory, and the real size counts,
/// not the one the zip declares.
fn check_zip(bytes: &[u8]) -> Result<(), ImportError> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| ImportError::NotXlsx {
        reason: format!("not a zip file: {e}"),
    })?;
    if zip.len() > MAX_PARTS {
        return Err(ImportError::Unpacked);
    }
    let mut left = MAX_UNPACKED_BYTES;
    for i in 0..zip.len() {
        let part = zip.by_index(i).map_err(|e| ImportError::NotXlsx {
            reason: format!("a part of the zip cannot be read: {e}"),
        })?;
        if part.size() > left {
            return Err(ImportError::Unpacked);
        }
        let mut meter = Meter {
            find_count: part.name().to_lowercase().ends_with("sharedstrings.xml"),
            ..Meter::default()
        };
        let read = std::io::copy(&mut part.take(left + 1), &mut meter).map_err(|e| {
            ImportError::NotXlsx {
                reason: format!("a part of the zip is damaged: {e}"),
            }
        })?;
        if read > left {
            return Err(ImportError::Unpacked);
        }
        left -= read;
        // The reader reserves room for the strings the part says it holds
        // (`uniqueCount`) before reading them: a claim the part's size
        // cannot back (each string takes at least `<si/>`, 5 bytes) would
        // reserve gigabytes from a kilobyte.
        if let Some(claimed) = meter.count
            && claimed > read / 5 + 1
        {
            return Err(ImportError::NotXlsx {
                reason: format!(
                    "its shared strings part claims {claimed} strings in {read} bytes; the file is damaged"
                ),
            });
        }
    }
    Ok(())
}

/// Counts a zip part's unpacked bytes, keeping none of them; in a
/// shared-strings part it also finds the first `uniqueCount` attribute
/// (reading across the chunks the part arrives in).
#[derive(Default)]
struct Meter {
    find_count: bool,
    /// Bytes since the last place `uniqueCount` could start.
    window: Vec<u8>,
    count: Option<u64>,
}

const UNIQUE_COUNT: &[u8] = b"uniqueCount";

impl std::io::Write for Meter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.find_count && self.count.is_none() {
            self.window.extend_from_slice(buf);
            match self
                .window
                .windows(UNIQUE_COUNT.len())
                .position(|w| w == UNIQUE_COUNT)
            {
                Some(at) => {
                    self.window.drain(..at);
                    if let Some(n) = unique_count(&self.window[UNIQUE_COUNT.len()..]) {
                        self.count = Some(n);
                        self.window = Vec::new();
                    }
                }
                None => {
                    // Keep what could be the start of the name.
                    let keep = self.window.len().min(UNIQUE_COUNT.len() - 1);
                    self.window.drain(..self.window.len() - keep);
                }
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The number after `uniqueCount` (`="123"`, spaces allowed), saturating;
/// `None` while it may still be arriving. Anything unexpected, or a value
/// that takes more than 256 bytes to arrive, counts as the largest number,
/// which [`check_zip`] refuses.
fn unique_count(rest: &[u8]) -> Option<u64> {
    match parse_unique_count(rest) {
        None if rest.len() > 256 => Some(u64::MAX),
        found => found,
    }
}

fn parse_unique_count(rest: &[u8]) -> Option<u64> {
    let mut i = 0;
    let skip_spaces = |i: &mut usize| {
        while rest.get(*i).is_some_and(u8::is_ascii_whitespace) {
            *i += 1;
        }
    };
    skip_spaces(&mut i);
    match rest.get(i) {
        None => return None,
        Some(b'=') => i += 1,
        // Text that merely contains the word: no claim.
        Some(_) => return Some(0),
    }
    skip_spaces(&mut i);
    match rest.get(i) {
        None => return None,
        Some(b'"' | b'\'') => i += 1,
        Some(_) => return Some(0),
    }
    let mut n: u64 = 0;
    loop {
        match rest.get(i) {
            None => return None,
            Some(d) if d.is_ascii_digit() => {
                n = n.saturating_mul(10).saturating_add(u64::from(d - b'0'));
                i += 1;
            }
            Some(_) => return Some(n),
        }
    }
}

fn xlsx_error(e: calamine::XlsxError) -> ImportError {
    ImportError::NotXlsx {
        reason: e.to_string(),
    }
}

fn xlsx_rows(bytes: &[u8]) -> Result<Rows, ImportError> {
    check_zip(bytes)?;
    // The spreadsheet reader is outside code reading hostile bytes: a
    // panic in it (none known; the fuzz target looks) is a refusal of the
    // file, not a crash of the process.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read_book(bytes))).unwrap_or_else(
        |_| {
            Err(ImportError::NotXlsx {
                reason: "the spreadsheet reader could not make sense of it".into(),
            })
        },
    )
}

fn read_book(bytes: &[u8]) -> Result<Rows, ImportError> {
    let mut book = Xlsx::new(Cursor::new(bytes)).map_err(xlsx_error)?;
    let mut cells = 0usize;
    let mut rows = Vec::new();
    let mut skipped_sheets = Vec::new();
    let mut first_problem: Option<MappingError> = None;
    let mut any_sheet = false;
    for name in book.sheet_names() {
        let Some(table) = read_sheet(&mut book, &name, &mut cells)? else {
            continue;
        };
        if table.known() == 0 {
            // No column of a record: someone's notes or a chart; skipped,
            // but remembered in case no sheet holds records at all.
            skipped_sheets.push(name.clone());
            if first_problem.is_none() {
                first_problem = Some(MappingError {
                    sheet: table.sheet,
                    kind: table.mapping.kind,
                    problems: table.mapping.problems,
                });
            }
            continue;
        }
        any_sheet = true;
        rows.extend(table.finish()?);
    }
    if !any_sheet {
        return Err(match first_problem {
            Some(e) => ImportError::Mapping(e),
            None => ImportError::NoHeader,
        });
    }
    Ok(Rows {
        rows,
        skipped_sheets,
    })
}

/// A sheet read cell by cell, row by row: its first row with a value is
/// the header, each later row goes to the [`TableReader`] as it ends.
/// `None` for an empty sheet.
fn read_sheet(
    book: &mut Xlsx<Cursor<&[u8]>>,
    name: &str,
    cells: &mut usize,
) -> Result<Option<TableReader>, ImportError> {
    let mut reader = book.worksheet_cells_reader(name).map_err(xlsx_error)?;
    let mut table: Option<TableReader> = None;
    // The row being read: its number and its values by column.
    let mut current: Option<(u32, Vec<(usize, Cell)>)> = None;
    let flush = |table: &mut Option<TableReader>,
                 row: Option<(u32, Vec<(usize, Cell)>)>,
                 cells: &mut usize|
     -> Result<(), ImportError> {
        let Some((row, values)) = row else {
            return Ok(());
        };
        match table {
            None => {
                // Bounded by MAX_COLUMNS.
                let width = values.iter().map(|(c, _)| c + 1).max().unwrap_or(0);
                let mut header = vec![Cell::Empty; width];
                for (c, v) in values {
                    header[c] = v;
                }
                *table = Some(TableReader::new(Some(name.to_string()), &header));
            }
            Some(t) => t.row(row as usize + 1, values, cells)?,
        }
        Ok(())
    };
    while let Some(cell) = reader.next_cell().map_err(xlsx_error)? {
        let (row, col) = cell.get_position();
        let value = match cell.get_value() {
            DataRef::Empty => continue,
            DataRef::Int(i) => Cell::Number(*i as f64),
            DataRef::Float(f) => Cell::Number(*f),
            DataRef::String(s) => Cell::Text(s.clone()),
            DataRef::SharedString(s) => Cell::Text((*s).to_string()),
            DataRef::Bool(b) => Cell::Bool(*b),
            DataRef::DateTime(dt) => match dt.as_datetime() {
                Some(d) if dt.is_datetime() => Cell::DateTime(d),
                _ => Cell::Number(dt.as_f64()),
            },
            DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => Cell::Text(s.clone()),
            DataRef::Error(e) => Cell::Error(e.to_string()),
        };
        if value.is_empty() {
            continue;
        }
        if row >= MAX_ROWS || col >= MAX_COLUMNS {
            return Err(ImportError::OutOfBounds {
                sheet: name.to_string(),
                cell: format!("{}{}", column_letters(col), u64::from(row) + 1),
            });
        }
        match &mut current {
            Some((r, values)) if *r == row => values.push((col as usize, value)),
            _ => {
                let done = current.replace((row, vec![(col as usize, value)]));
                flush(&mut table, done, cells)?;
            }
        }
    }
    flush(&mut table, current, cells)?;
    Ok(table)
}

/// Fuzz entry (`fuzz/`, and the corpus replay test): arbitrary bytes read
/// as an XLSX workbook.
#[doc(hidden)]
pub fn fuzz_xlsx(data: &[u8]) {
    let _ = read(data, Source::Xlsx);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_xlsxwriter as xlsx;

    fn fields(rows: Rows) -> Vec<Fields> {
        rows.rows
            .into_iter()
            .map(|(place, r)| r.unwrap_or_else(|e| panic!("{place}: {e:?}")))
            .collect()
    }

    fn mapping_error(bytes: &[u8], source: Source) -> MappingError {
        match read(bytes, source) {
            Err(ImportError::Mapping(e)) => e,
            other => panic!("expected a mapping error, got {other:?}"),
        }
    }

    const HEADER: &str = "date,minutes,channel,services,category,outcome,age_band,language";

    #[test]
    fn the_separator_is_found_in_the_header_line() {
        assert_eq!(delimiter("a,b,c\n1;2;3;4;5"), b',');
        assert_eq!(delimiter("a;b;c\n"), b';');
        assert_eq!(delimiter("a\tb\tc\n"), b'\t');
        // Separators inside quotes do not count.
        assert_eq!(delimiter("\"a;b;c\",d\n"), b',');
        assert_eq!(delimiter(""), b',');
    }

    #[test]
    fn text_is_utf8_utf16_or_windows_1252() {
        assert_eq!(decode("Åldersgrupp".as_bytes()), "Åldersgrupp");
        assert_eq!(decode("\u{feff}Åldersgrupp".as_bytes()), "Åldersgrupp");
        // Å = 0xC5, ä = 0xE4 in Windows-1252; € = 0x80 (not in Latin-1).
        assert_eq!(decode(b"\xc5lder;h\xe4r;\x80"), "Ålder;här;€");
        let utf16: Vec<u8> = [0xfeffu16]
            .into_iter()
            .chain("Språk".encode_utf16())
            .flat_map(u16::to_le_bytes)
            .collect();
        assert_eq!(decode(&utf16), "Språk");
    }

    #[test]
    fn a_windows_1252_excel_csv_with_swedish_headers_reads() {
        let text = "Datum;Minuter;Kanal;Tjänster;Kategori;Resultat;Åldersgrupp;Språk;Anteckning;Känsligt\r\n\
                    2025-03-04;45,0;drop_in;Försäkringskassan|BankID;e_service;solved;65_79;sv;Hjälp åt en äldre;SANT\r\n";
        let bytes: Vec<u8> = text.chars().map(|c| c as u32 as u8).collect();
        assert!(std::str::from_utf8(&bytes).is_err());
        let rows = fields(read(&bytes, Source::Csv).unwrap());
        assert_eq!(rows.len(), 1);
        let f = &rows[0];
        assert_eq!(f["minutes"], json!("45"));
        assert_eq!(f["services"], json!(["Försäkringskassan", "BankID"]));
        assert_eq!(f["note"], json!("Hjälp åt en äldre"));
        assert_eq!(f["sensitive"], json!("true"));
    }

    #[test]
    fn headers_match_in_any_case_and_spacing() {
        let text = "  DATE ,Minuter,kanal,Services,KATEGORI,outcome,  age   BAND ,Språk\n\
                    2025-03-04,30,drop_in,BankID,e_service,solved,65_79,sv\n";
        let rows = fields(read(text.as_bytes(), Source::Csv).unwrap());
        assert_eq!(rows[0]["age_band"], json!("65_79"));
        assert_eq!(rows[0]["date"], json!("2025-03-04"));
    }

    #[test]
    fn mapping_errors_name_the_header_the_nearest_name_and_all_names() {
        let e = mapping_error(format!("{HEADER},Anteckningar\n").as_bytes(), Source::Csv);
        assert_eq!(
            e.problems,
            [MappingProblem::Unknown {
                header: "Anteckningar".into(),
                closest: Some("Anteckning"),
            }]
        );
        let msg = e.to_string();
        assert!(msg.contains("did you mean 'Anteckning'?"), "{msg}");
        assert!(msg.contains("note (Anteckning, Note)"), "{msg}");
        assert!(msg.contains("Nothing was imported"), "{msg}");

        let e = mapping_error(b"minutes,Datum,date\n", Source::Csv);
        assert!(e.problems.contains(&MappingProblem::Duplicate {
            first: "Datum".into(),
            second: "date".into()
        }));
        assert!(
            e.problems
                .contains(&MappingProblem::Missing { column: "outcome" }),
            "{e}"
        );

        let e = mapping_error(
            format!("{HEADER},\n2025-03-04,30,drop_in,BankID,e_service,solved,65_79,sv,x\n")
                .as_bytes(),
            Source::Csv,
        );
        assert_eq!(e.problems, [MappingProblem::Unnamed { column: "9".into() }]);
        // A header-less column without values is stray formatting.
        let ok = format!("{HEADER},\n2025-03-04,30,drop_in,BankID,e_service,solved,65_79,sv,\n");
        assert_eq!(fields(read(ok.as_bytes(), Source::Csv).unwrap()).len(), 1);
    }

    #[test]
    fn typed_spreadsheet_cells_read_as_the_export_wrote_them() {
        let date = Shape::Date;
        let time = Shape::Time;
        let int = Shape::Int { min: 1, max: 480 };
        let text = |s: Option<String>| s.unwrap();
        // 45720 is 2025-03-04; 0.4270833 is 10:15.
        assert_eq!(
            text(cell_text(date, &Cell::Number(45720.0)).unwrap()),
            "2025-03-04"
        );
        assert_eq!(
            text(cell_text(time, &Cell::Number(0.427_083_3)).unwrap()),
            "10:15"
        );
        let dt = NaiveDate::from_ymd_opt(2025, 3, 4)
            .unwrap()
            .and_hms_opt(10, 15, 0)
            .unwrap();
        assert_eq!(
            text(cell_text(date, &Cell::DateTime(dt)).unwrap()),
            "2025-03-04"
        );
        assert_eq!(text(cell_text(time, &Cell::DateTime(dt)).unwrap()), "10:15");
        assert_eq!(text(cell_text(int, &Cell::Number(45.0)).unwrap()), "45");
        assert_eq!(
            text(cell_text(int, &Cell::Text("45,0".into())).unwrap()),
            "45"
        );
        assert_eq!(
            text(cell_text(int, &Cell::Text("45,5".into())).unwrap()),
            "45,5"
        );
        assert_eq!(
            text(cell_text(Shape::Bool, &Cell::Bool(true)).unwrap()),
            "true"
        );
        assert_eq!(
            text(cell_text(Shape::Bool, &Cell::Number(0.0)).unwrap()),
            "false"
        );
        assert_eq!(
            text(cell_text(Shape::Bool, &Cell::Text("FALSKT".into())).unwrap()),
            "false"
        );
        let note = Shape::Text {
            max: 10,
            screened: true,
        };
        assert_eq!(text(cell_text(note, &Cell::Number(12.0)).unwrap()), "12");
        assert_eq!(cell_text(note, &Cell::Empty).unwrap(), None);
        assert_eq!(cell_text(note, &Cell::Text("  ".into())).unwrap(), None);
        assert!(cell_text(date, &Cell::Error("#N/A".into())).is_err());
        assert!(cell_text(date, &Cell::Number(-3.0)).is_err());
        assert!(cell_text(date, &Cell::Number(f64::NAN)).is_err());
    }

    /// A workbook as a person makes it: typed cells, rows out of order, an
    /// empty row, a notes sheet first.
    #[test]
    fn a_hand_made_workbook_reads_by_sheet() {
        let mut book = xlsx::Workbook::new();
        let notes = book.add_worksheet();
        notes.set_name("Anteckningar").unwrap();
        notes.write_string(0, 0, "Att göra").unwrap();
        let ws = book.add_worksheet();
        ws.set_name("Besök").unwrap();
        for (c, h) in [
            "Datum",
            "Tid",
            "Minuter",
            "Kanal",
            "Tjänster",
            "Kategori",
            "Resultat",
        ]
        .iter()
        .chain(&["Åldersgrupp", "Språk", "Känsligt"])
        .enumerate()
        {
            ws.write_string(0, c as u16, *h).unwrap();
        }
        let fmt = xlsx::Format::new().set_num_format("yyyy-mm-dd");
        let tfmt = xlsx::Format::new().set_num_format("hh:mm");
        for (row, minutes) in [(4u32, 20.0), (2, 30.0)] {
            let date = xlsx::ExcelDateTime::from_ymd(2025, 3, 4).unwrap();
            ws.write_date_with_format(row, 0, &date, &fmt).unwrap();
            let time = xlsx::ExcelDateTime::from_hms(10, 15, 0).unwrap();
            ws.write_datetime_with_format(row, 1, &time, &tfmt).unwrap();
            ws.write_number(row, 2, minutes).unwrap();
            for (c, v) in [
                (3, "drop_in"),
                (4, "BankID"),
                (5, "e_service"),
                (6, "solved"),
            ]
            .into_iter()
            .chain([(7, "65_79"), (8, "sv")])
            {
                ws.write_string(row, c, v).unwrap();
            }
            ws.write_boolean(row, 9, true).unwrap();
        }
        let bytes = book.save_to_buffer().unwrap();
        let rows = read(&bytes, Source::Xlsx).unwrap();
        assert_eq!(rows.skipped_sheets, ["Anteckningar"]);
        let places: Vec<String> = rows.rows.iter().map(|(p, _)| p.to_string()).collect();
        assert_eq!(places, ["sheet 'Besök' row 3", "sheet 'Besök' row 5"]);
        let f = fields(rows);
        assert_eq!(f[0]["date"], json!("2025-03-04"));
        assert_eq!(f[0]["time"], json!("10:15"));
        assert_eq!(f[0]["minutes"], json!("30"));
        assert_eq!(f[1]["minutes"], json!("20"));
        assert_eq!(f[0]["sensitive"], json!("true"));
    }

    /// A value right of the header (a sum, a remark) has no column: the
    /// import says where rather than dropping it.
    #[test]
    fn a_value_outside_the_header_is_a_mapping_error_naming_its_column() {
        let mut book = xlsx::Workbook::new();
        let ws = book.add_worksheet();
        for (c, h) in HEADER.split(',').enumerate() {
            ws.write_string(0, c as u16, h).unwrap();
        }
        ws.write_string(1, 0, "2025-03-04").unwrap();
        ws.write_number(1, 40, 120.0).unwrap();
        let bytes = book.save_to_buffer().unwrap();
        let e = mapping_error(&bytes, Source::Xlsx);
        assert_eq!(
            e.problems,
            [MappingProblem::Unnamed {
                column: "AO".into()
            }]
        );
        assert!(
            e.to_string().contains("column AO has values but no header"),
            "{e}"
        );
    }

    #[test]
    fn what_is_not_a_workbook_is_refused_with_advice() {
        for bytes in [&b"Datum;Minuter\n"[..], b"PK\x03\x04 broken", b""] {
            let e = read(bytes, Source::Xlsx).unwrap_err();
            assert!(matches!(e, ImportError::NotXlsx { .. }), "{e}");
            assert!(e.to_string().contains("save it as .xlsx"), "{e}");
        }
        let big = vec![b' '; MAX_FILE_BYTES as usize + 1];
        let e = read(&big, Source::Csv).unwrap_err();
        assert!(matches!(e, ImportError::TooLarge { .. }), "{e}");
    }

    /// `<sst uniqueCount="…">` makes the reader reserve that many strings
    /// up front: a claim the part cannot back is refused first.
    #[test]
    fn a_shared_strings_count_the_part_cannot_back_is_refused() {
        let zip_with = |sst: &str| {
            let mut out = Cursor::new(Vec::new());
            let mut z = zip::ZipWriter::new(&mut out);
            z.start_file(
                "xl/sharedStrings.xml",
                zip::write::SimpleFileOptions::default(),
            )
            .unwrap();
            std::io::Write::write_all(&mut z, sst.as_bytes()).unwrap();
            z.finish().unwrap();
            out.into_inner()
        };
        let padding = " ".repeat(100_000);
        for claim in [
            "<sst uniqueCount=\"999999999999\">".to_string(),
            format!("<?xml version=\"1.0\"?>{padding}<sst count='1' uniqueCount = '4000000000'>"),
            "<sst uniqueCount=\"99999999999999999999999999\">".to_string(),
        ] {
            let e = check_zip(&zip_with(&claim)).unwrap_err();
            assert!(e.to_string().contains("claims"), "{e}");
        }
        let honest = "<sst count=\"2\" uniqueCount=\"2\"><si><t>a</t></si><si><t>b</t></si></sst>";
        check_zip(&zip_with(honest)).unwrap();
        assert_eq!(unique_count(b"=\"12"), None);
        assert_eq!(unique_count(b" = \"12\" "), Some(12));
        assert_eq!(unique_count(b" is a word"), Some(0));
    }

    #[test]
    fn column_letters_are_as_a_spreadsheet_shows_them() {
        assert_eq!(column_letters(0), "A");
        assert_eq!(column_letters(25), "Z");
        assert_eq!(column_letters(26), "AA");
        assert_eq!(column_letters(16_383), "XFD");
    }
}
