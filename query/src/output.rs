//! Rendering query results: a pretty table, CSV (header + rows) or JSON lines.
//!
//! Every timestamp column is shown in UTC as RFC 3339 (`2026-11-22T10:00:00Z`, with as
//! many fractional digits as needed), whatever its time zone or lack of one. In CSV, which
//! has no nested values, lists, maps and structs are written as their display text
//! (`[a, b]`, `{k: v}`); JSON keeps them as arrays and objects.

use std::io::Write;
use std::str::FromStr;
use std::sync::Arc;

use anyhow::{Result, bail};
use datafusion::arrow::array::{Array, ArrayRef, RecordBatch, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::csv;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::json::LineDelimitedWriter;
use datafusion::arrow::json::writer::WriterBuilder as JsonWriterBuilder;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::arrow::util::pretty::pretty_format_batches_with_options;

/// How results are printed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// A boxed table (arrow pretty print).
    #[default]
    Table,
    /// A header line, then one line per row.
    Csv,
    /// One JSON object per row and line.
    Json,
}

impl FromStr for OutputFormat {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "table" => Ok(Self::Table),
            "csv" => Ok(Self::Csv),
            "json" | "jsonl" | "ndjson" => Ok(Self::Json),
            other => bail!("unknown format {other:?} (expected table, csv or json)"),
        }
    }
}

impl std::fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Table => "table",
            Self::Csv => "csv",
            Self::Json => "json",
        })
    }
}

/// The zone timestamps are shown in unless `--tz` says otherwise.
const UTC: &str = "UTC";

/// How values are shown: the time zone of every timestamp.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Display {
    tz: Arc<str>,
}

impl Default for Display {
    fn default() -> Self {
        Self { tz: UTC.into() }
    }
}

impl Display {
    /// Timestamps in `tz` (an IANA name such as `Europe/Berlin`, or `+02:00`); UTC when
    /// `None`. An unknown zone is an error that names it.
    pub fn new(tz: Option<&str>) -> Result<Self> {
        let Some(tz) = tz.map(str::trim).filter(|t| !t.is_empty()) else {
            return Ok(Self::default());
        };
        let tz = if tz.eq_ignore_ascii_case("utc") || tz == "Z" {
            UTC
        } else {
            tz
        };
        if tz
            .parse::<datafusion::arrow::array::timezone::Tz>()
            .is_err()
        {
            bail!(
                "unknown time zone {tz:?}: write UTC, an IANA name (Europe/Berlin) or an offset (+02:00)"
            );
        }
        Ok(Self { tz: tz.into() })
    }

    pub fn tz(&self) -> &str {
        &self.tz
    }

    /// `Timestamp(unit, any zone or none)` → `Timestamp(unit, tz)`; naive timestamps are
    /// taken as UTC, which is what DataFusion assumes for them.
    fn shown_type(&self, data_type: &DataType) -> Option<DataType> {
        match data_type {
            DataType::Timestamp(unit, tz) if tz.as_deref() != Some(&*self.tz) => {
                Some(DataType::Timestamp(*unit, Some(self.tz.clone())))
            }
            _ => None,
        }
    }
}

/// Renders `array` as text, one string per value, nulls kept.
fn display_strings(array: &dyn Array) -> Result<ArrayRef> {
    let options = FormatOptions::default();
    let formatter = ArrayFormatter::try_new(array, &options)?;
    let mut builder = StringBuilder::with_capacity(array.len(), array.len() * 16);
    for i in 0..array.len() {
        if array.is_null(i) {
            builder.append_null();
        } else {
            builder.append_value(formatter.value(i).try_to_string()?);
        }
    }
    Ok(Arc::new(builder.finish()))
}

/// Prepares a batch for printing: top-level timestamps to the display zone; with
/// `flatten_nested`, nested columns to their display text.
pub fn prepare(
    batch: &RecordBatch,
    flatten_nested: bool,
    display: &Display,
) -> Result<RecordBatch> {
    let schema = batch.schema();
    if !schema.fields().iter().any(|f| {
        display.shown_type(f.data_type()).is_some() || (flatten_nested && f.data_type().is_nested())
    }) {
        return Ok(batch.clone());
    }
    let mut fields = Vec::with_capacity(schema.fields().len());
    let mut columns = Vec::with_capacity(schema.fields().len());
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        if let Some(shown) = display.shown_type(field.data_type()) {
            columns.push(cast(column, &shown)?);
            fields.push(field.as_ref().clone().with_data_type(shown));
        } else if flatten_nested && field.data_type().is_nested() {
            columns.push(display_strings(column.as_ref())?);
            fields.push(Field::new(
                field.name(),
                DataType::Utf8,
                field.is_nullable(),
            ));
        } else {
            columns.push(column.clone());
            fields.push(field.as_ref().clone());
        }
    }
    let schema = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
    Ok(RecordBatch::try_new(schema, columns)?)
}

enum Sink<W: Write> {
    Table { out: W, batches: Vec<RecordBatch> },
    Csv(Box<csv::Writer<W>>),
    Json(LineDelimitedWriter<W>),
}

/// Writes the batches of one result, streaming for CSV and JSON (a table needs all rows
/// to size its columns, so it is printed by [`BatchWriter::finish`]).
pub struct BatchWriter<W: Write> {
    sink: Sink<W>,
    schema: SchemaRef,
    rows: usize,
    wrote_any: bool,
    display: Display,
}

impl<W: Write> BatchWriter<W> {
    /// A writer for a result with columns `schema`, timestamps in UTC.
    pub fn new(out: W, format: OutputFormat, schema: SchemaRef) -> Self {
        Self::with_display(out, format, schema, Display::default())
    }

    /// A writer for a result with columns `schema`, values shown as `display` says.
    pub fn with_display(out: W, format: OutputFormat, schema: SchemaRef, display: Display) -> Self {
        let sink = match format {
            OutputFormat::Table => Sink::Table {
                out,
                batches: Vec::new(),
            },
            OutputFormat::Csv => Sink::Csv(Box::new(
                csv::WriterBuilder::new().with_header(true).build(out),
            )),
            OutputFormat::Json => Sink::Json(
                JsonWriterBuilder::new()
                    .with_explicit_nulls(true)
                    .build::<_, datafusion::arrow::json::writer::LineDelimited>(out),
            ),
        };
        Self {
            sink,
            schema,
            rows: 0,
            wrote_any: false,
            display,
        }
    }

    /// Writes (or, for a table, keeps) one batch.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.rows += batch.num_rows();
        match &mut self.sink {
            Sink::Table { batches, .. } => batches.push(prepare(batch, false, &self.display)?),
            Sink::Csv(w) => {
                w.write(&prepare(batch, true, &self.display)?)?;
                self.wrote_any = true;
            }
            Sink::Json(w) => w.write(&prepare(batch, false, &self.display)?)?,
        }
        Ok(())
    }

    /// Finishes the output (prints the table; writes the CSV header of an empty result)
    /// and returns the number of rows written. A result without columns (`CREATE VIEW`,
    /// `SET`) prints nothing.
    pub fn finish(self) -> Result<usize> {
        let no_columns = self.schema.fields().is_empty();
        match self.sink {
            Sink::Table { mut out, batches } => {
                if !no_columns {
                    let batches = if batches.is_empty() {
                        vec![prepare(
                            &RecordBatch::new_empty(self.schema.clone()),
                            false,
                            &self.display,
                        )?]
                    } else {
                        batches
                    };
                    let options = FormatOptions::default().with_null("NULL");
                    let table = pretty_format_batches_with_options(&batches, &options)?;
                    writeln!(out, "{table}")?;
                }
                out.flush()?;
            }
            Sink::Csv(mut w) => {
                if !self.wrote_any && !no_columns {
                    let empty = RecordBatch::new_empty(self.schema.clone());
                    w.write(&prepare(&empty, true, &self.display)?)?;
                }
                w.into_inner().flush()?;
            }
            Sink::Json(mut w) => {
                w.finish()?;
                w.into_inner().flush()?;
            }
        }
        Ok(self.rows)
    }
}

/// Writes a whole result to `out`; returns the number of rows.
pub fn write_batches<W: Write>(
    out: W,
    batches: &[RecordBatch],
    format: OutputFormat,
) -> Result<usize> {
    write_batches_with(out, batches, format, &Display::default())
}

/// [`write_batches`] with values shown as `display` says.
pub fn write_batches_with<W: Write>(
    out: W,
    batches: &[RecordBatch],
    format: OutputFormat,
    display: &Display,
) -> Result<usize> {
    let schema = match batches.first() {
        Some(b) => b.schema(),
        None => Arc::new(Schema::empty()),
    };
    let mut writer = BatchWriter::with_display(out, format, schema, display.clone());
    for batch in batches {
        writer.write(batch)?;
    }
    writer.finish()
}

/// Renders a whole result as a string.
pub fn format_batches(batches: &[RecordBatch], format: OutputFormat) -> Result<String> {
    let mut buf = Vec::new();
    write_batches(&mut buf, batches, format)?;
    Ok(String::from_utf8(buf)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{
        Int32Array, ListBuilder, StringArray, TimestampMillisecondArray, TimestampNanosecondArray,
    };
    use datafusion::arrow::datatypes::TimeUnit;

    fn sample() -> RecordBatch {
        let ts = TimestampNanosecondArray::from(vec![Some(1_795_000_000_000_000_000), None])
            .with_timezone("UTC");
        let naive = TimestampMillisecondArray::from(vec![Some(1_795_000_000_123), Some(0)]);
        let n = Int32Array::from(vec![Some(1), None]);
        let s = StringArray::from(vec![Some("a,b"), Some("c")]);
        let mut tags = ListBuilder::new(StringBuilder::new());
        tags.values().append_value("x");
        tags.values().append_value("y");
        tags.append(true);
        tags.append(false);
        let schema = Schema::new(vec![
            Field::new(
                "ts",
                DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
                true,
            ),
            Field::new(
                "naive",
                DataType::Timestamp(TimeUnit::Millisecond, None),
                true,
            ),
            Field::new("n", DataType::Int32, true),
            Field::new("s", DataType::Utf8, true),
            Field::new(
                "tags",
                DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
                true,
            ),
        ]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(ts),
                Arc::new(naive),
                Arc::new(n),
                Arc::new(s),
                Arc::new(tags.finish()),
            ],
        )
        .unwrap()
    }

    #[test]
    fn csv_has_header_rfc3339_and_flattened_lists() {
        let out = format_batches(&[sample()], OutputFormat::Csv).unwrap();
        assert_eq!(
            out,
            "ts,naive,n,s,tags\n\
             2026-11-18T11:06:40Z,2026-11-18T11:06:40.123Z,1,\"a,b\",\"[x, y]\"\n\
             ,1970-01-01T00:00:00Z,,c,\n"
        );
    }

    #[test]
    fn json_lines_with_explicit_nulls() {
        let out = format_batches(&[sample()], OutputFormat::Json).unwrap();
        assert_eq!(
            out,
            "{\"ts\":\"2026-11-18T11:06:40Z\",\"naive\":\"2026-11-18T11:06:40.123Z\",\"n\":1,\"s\":\"a,b\",\"tags\":[\"x\",\"y\"]}\n\
             {\"ts\":null,\"naive\":\"1970-01-01T00:00:00Z\",\"n\":null,\"s\":\"c\",\"tags\":null}\n"
        );
    }

    #[test]
    fn table_shows_header_even_without_rows() {
        let empty = RecordBatch::new_empty(sample().schema());
        let out = format_batches(&[empty], OutputFormat::Table).unwrap();
        assert!(out.contains("| ts | naive | n | s | tags |"), "{out}");
        let out = format_batches(&[sample()], OutputFormat::Table).unwrap();
        assert!(out.contains("2026-11-18T11:06:40Z"), "{out}");
        assert!(out.contains("NULL"), "{out}");
    }

    #[test]
    fn empty_csv_result_still_has_header() {
        let empty = RecordBatch::new_empty(sample().schema());
        assert_eq!(
            format_batches(&[empty], OutputFormat::Csv).unwrap(),
            "ts,naive,n,s,tags\n"
        );
    }

    #[test]
    fn timestamps_in_a_chosen_zone() {
        let berlin = Display::new(Some("Europe/Berlin")).unwrap();
        let mut buf = Vec::new();
        write_batches_with(&mut buf, &[sample()], OutputFormat::Csv, &berlin).unwrap();
        let out = String::from_utf8(buf).unwrap();
        assert!(out.contains("2026-11-18T12:06:40+01:00"), "{out}");
        let plus2 = Display::new(Some("+02:00")).unwrap();
        let mut buf = Vec::new();
        write_batches_with(&mut buf, &[sample()], OutputFormat::Csv, &plus2).unwrap();
        assert!(
            String::from_utf8(buf)
                .unwrap()
                .contains("2026-11-18T13:06:40+02:00")
        );
        assert_eq!(Display::new(Some("utc")).unwrap(), Display::default());
        assert!(
            Display::new(Some("Mars/Olympus"))
                .unwrap_err()
                .to_string()
                .contains("Mars/Olympus")
        );
    }

    #[test]
    fn format_names_parse() {
        assert_eq!("CSV".parse::<OutputFormat>().unwrap(), OutputFormat::Csv);
        assert_eq!("json".parse::<OutputFormat>().unwrap(), OutputFormat::Json);
        assert_eq!(
            "table".parse::<OutputFormat>().unwrap(),
            OutputFormat::Table
        );
        assert!("xml".parse::<OutputFormat>().is_err());
    }
}
