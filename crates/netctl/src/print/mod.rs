//! How answers reach stdout: tables for people; JSON and Go templates for scripts. A pipe
//! closed early (`| head`) ends the process quietly, as for any Unix tool (`main` restores
//! SIGPIPE's default).

pub mod cluster;
pub mod listing;
pub mod table;
pub mod template;
pub mod text;

use serde::Serialize;

use self::listing::Listed;
use self::table::shown_id;
use self::template::Format;
use crate::cli::ListArgs;

/// Pretty JSON.
pub fn json(value: &impl Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// One object: its text for people, JSON, or a template's line.
pub fn one<T: Serialize>(
    item: &T,
    format: &Format,
    text: impl Fn(&T) -> String,
) -> anyhow::Result<()> {
    match format {
        Format::Table => {
            let text = text(item);
            print!("{text}");
            if !text.ends_with('\n') {
                println!();
            }
            Ok(())
        }
        Format::Json => json(item),
        Format::Template(t) | Format::TableTemplate(t) => {
            let template = template::compile(t)?;
            println!(
                "{}",
                template::render(&template, &serde_json::to_value(item)?)?
            );
            Ok(())
        }
    }
}

/// `ls`: IDs only (`-q`, whatever `--format` says, as Docker's), a table, all of the
/// objects as JSON, or a template's line per object (over Docker's `ls` fields).
pub fn list<T: Listed>(
    items: &[T],
    args: &ListArgs,
    table: impl Fn(&[T], bool) -> String,
) -> anyhow::Result<()> {
    if args.quiet {
        for item in items {
            println!("{}", shown_id(item.id(), args.no_trunc));
        }
        return Ok(());
    }
    match &args.format {
        Format::Table => println!("{}", table(items, args.no_trunc)),
        Format::Json => json(&items)?,
        Format::Template(t) => {
            let template = template::compile(t)?;
            for item in items {
                println!("{}", template::render(&template, &item.row(args.no_trunc))?);
            }
        }
        Format::TableTemplate(t) => {
            let template = template::compile(t)?;
            let rows: Vec<_> = items.iter().map(|i| i.row(args.no_trunc)).collect();
            println!("{}", template::render_table(&template, T::HEADERS, &rows)?);
        }
    }
    Ok(())
}

/// `inspect`: one block of details per object, a JSON array (`[]` when none was found), or
/// a template's line per object.
pub fn details<T: Serialize>(
    items: &[T],
    format: &Format,
    text: impl Fn(&T) -> String,
) -> anyhow::Result<()> {
    match format {
        Format::Table => {
            if !items.is_empty() {
                let text: Vec<_> = items.iter().map(text).collect();
                println!("{}", text.join("\n\n"));
            }
            Ok(())
        }
        Format::Json => json(&items),
        Format::Template(t) | Format::TableTemplate(t) => {
            let template = template::compile(t)?;
            for item in items {
                println!(
                    "{}",
                    template::render(&template, &serde_json::to_value(item)?)?
                );
            }
            Ok(())
        }
    }
}
