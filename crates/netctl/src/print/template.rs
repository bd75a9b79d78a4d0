//! `--format`, as Docker's CLI takes it: `table` (the default), `json`, a Go template
//! rendered once per object (`'{{.Name}} {{.Driver}}'`, `'{{json .}}'`), or `table
//! TEMPLATE` (a header line, then a row per object, in columns split at tabs).

use std::str::FromStr;
use std::sync::Arc;

use anyhow::Context;
use gotmpl::{Template, TemplateError, Value};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Format {
    #[default]
    Table,
    Json,
    Template(String),
    TableTemplate(String),
}

impl FromStr for Format {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.trim() {
            "" | "table" => Self::Table,
            "json" => Self::Json,
            t => match t.strip_prefix("table ") {
                Some(template) => Self::TableTemplate(template.to_string()),
                None => Self::Template(t.to_string()),
            },
        })
    }
}

/// A template ready to render: `\t` and `\n` written as two characters mean a tab and a
/// newline, as in Docker's formatter (a shell's double quotes leave them as they are).
pub fn compile(source: &str) -> anyhow::Result<Template> {
    let source = source.replace("\\t", "\t").replace("\\n", "\n");
    let functions: gotmpl::FuncMap = docker_functions()
        .into_iter()
        .map(|(name, f)| (name.to_string(), f))
        .collect();
    Template::new("format")
        .funcs(functions)
        .parse(&source)
        .with_context(|| format!("invalid --format template {source:?}"))
}

/// The template's output for one object, given as JSON.
pub fn render(template: &Template, object: &serde_json::Value) -> anyhow::Result<String> {
    let value = gotmpl::to_value(object).context("template data")?;
    template
        .execute_to_string(&value)
        .context("rendering the --format template")
}

/// `table TEMPLATE`: each object's line split at tabs into columns, under a header made by
/// rendering the template with each field's header (`NETWORK ID` for `.ID`) in its place.
pub fn render_table(
    template: &Template,
    headers: &[(&str, &str)],
    objects: &[serde_json::Value],
) -> anyhow::Result<String> {
    let keys = objects
        .first()
        .and_then(|o| o.as_object())
        .map(|o| o.keys().cloned().collect::<Vec<_>>())
        .unwrap_or_else(|| headers.iter().map(|(k, _)| k.to_string()).collect());
    let header_of = |key: &str| {
        headers
            .iter()
            .find(|(k, _)| *k == key)
            .map_or_else(|| key.to_uppercase(), |(_, h)| h.to_string())
    };
    let header: serde_json::Map<String, serde_json::Value> = keys
        .iter()
        .map(|k| (k.clone(), serde_json::Value::String(header_of(k))))
        .collect();
    let header = render(template, &serde_json::Value::Object(header))?;
    let columns = |line: &str| line.split('\t').map(str::to_string).collect::<Vec<_>>();
    let rows = objects
        .iter()
        .map(|o| render(template, o).map(|line| columns(&line)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let header = columns(&header);
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    Ok(super::table::table(&header, &rows))
}

/// The functions Docker's CLI adds to Go's (`json`, `join`, `split`, `lower`, `upper`,
/// `title`, `truncate`, `pad`); Go's own (`index`, `len`, `printf`, `println`, `eq`…) come
/// with the engine.
fn docker_functions() -> Vec<(&'static str, TemplateFn)> {
    vec![
        (
            "json",
            Arc::new(|args: &[Value]| {
                let [value] = args else {
                    return Err(arity("json", 1, args));
                };
                let json = serde_json::to_string(&to_json(value)).map_err(exec)?;
                Ok(Value::String(json.into()))
            }),
        ),
        (
            "join",
            Arc::new(|args: &[Value]| {
                let [Value::List(items), Value::String(sep)] = args else {
                    return Err(arity("join", 2, args));
                };
                let items: Vec<String> = items.iter().map(|i| i.to_string()).collect();
                Ok(Value::String(items.join(sep).into()))
            }),
        ),
        (
            "split",
            Arc::new(|args: &[Value]| {
                let [Value::String(s), Value::String(sep)] = args else {
                    return Err(arity("split", 2, args));
                };
                let parts: Vec<Value> = s.split(&**sep).map(|p| Value::String(p.into())).collect();
                Ok(Value::List(parts.into()))
            }),
        ),
        ("lower", text_fn("lower", |s| s.to_lowercase())),
        ("upper", text_fn("upper", |s| s.to_uppercase())),
        ("title", text_fn("title", title)),
        (
            "truncate",
            Arc::new(|args: &[Value]| {
                let [value, n] = args else {
                    return Err(arity("truncate", 2, args));
                };
                let n = n.as_int().unwrap_or(0).max(0) as usize;
                Ok(Value::String(
                    value.to_string().chars().take(n).collect::<String>().into(),
                ))
            }),
        ),
        (
            "pad",
            Arc::new(|args: &[Value]| {
                let [value, before, after] = args else {
                    return Err(arity("pad", 3, args));
                };
                let spaces = |v: &Value| " ".repeat(v.as_int().unwrap_or(0).max(0) as usize);
                Ok(Value::String(
                    format!("{}{value}{}", spaces(before), spaces(after)).into(),
                ))
            }),
        ),
    ]
}

type TemplateFn = gotmpl::ValueFunc;

fn text_fn(name: &'static str, f: fn(&str) -> String) -> TemplateFn {
    Arc::new(move |args: &[Value]| {
        let [value] = args else {
            return Err(arity(name, 1, args));
        };
        Ok(Value::String(f(&value.to_string()).into()))
    })
}

fn title(s: &str) -> String {
    s.split(' ')
        .map(|word| {
            let mut chars = word.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn arity(name: &str, expected: usize, args: &[Value]) -> TemplateError {
    TemplateError::Exec(format!(
        "{name} takes {expected} argument(s) of the right kind, got {}",
        args.len()
    ))
}

fn exec(e: impl std::fmt::Display) -> TemplateError {
    TemplateError::Exec(e.to_string())
}

/// A template value as JSON (Go's `json.Marshal`: maps with sorted keys).
fn to_json(value: &Value) -> serde_json::Value {
    match value {
        Value::Nil => serde_json::Value::Null,
        Value::Bool(b) => (*b).into(),
        Value::Int(i) => (*i).into(),
        Value::Uint(u) => (*u).into(),
        Value::Float(f) => (*f).into(),
        Value::String(s) => s.to_string().into(),
        Value::List(items) => items.iter().map(to_json).collect(),
        Value::Map(map) => map
            .iter()
            .map(|(k, v)| (k.to_string(), to_json(v)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
        other => other.to_string().into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(template: &str, object: serde_json::Value) -> String {
        render(&compile(template).unwrap(), &object).unwrap()
    }

    #[test]
    fn formats_parse_as_docker_spells_them() {
        assert_eq!("table".parse::<Format>().unwrap(), Format::Table);
        assert_eq!("json".parse::<Format>().unwrap(), Format::Json);
        assert_eq!(
            "table {{.ID}}\\t{{.Name}}".parse::<Format>().unwrap(),
            Format::TableTemplate("{{.ID}}\\t{{.Name}}".into())
        );
        assert_eq!(
            "{{.Name}}".parse::<Format>().unwrap(),
            Format::Template("{{.Name}}".into())
        );
    }

    #[test]
    fn fields_json_and_docker_functions() {
        let net = json!({"Name": "web", "Driver": "bridge", "Labels": {"env": "dev"}, "Subnets": ["10.0.0.0/24", "fd00::/64"]});
        assert_eq!(one("{{.Name}} {{.Driver}}", net.clone()), "web bridge");
        assert_eq!(one("{{json .Labels}}", net.clone()), r#"{"env":"dev"}"#);
        assert_eq!(one(r#"{{index .Labels "env"}}"#, net.clone()), "dev");
        assert_eq!(
            one(r#"{{join .Subnets ","}}"#, net.clone()),
            "10.0.0.0/24,fd00::/64"
        );
        assert_eq!(
            one("{{upper .Name}}|{{title .Driver}}", net.clone()),
            "WEB|Bridge"
        );
        assert_eq!(one("{{truncate .Driver 3}}", net.clone()), "bri");
        assert_eq!(one("{{.Name}}\\t{{.Driver}}", net), "web\tbridge");
    }

    #[test]
    fn table_templates_get_a_header() {
        let rows = [
            json!({"ID": "0123", "Name": "web"}),
            json!({"ID": "4567", "Name": "db"}),
        ];
        let t = compile("{{.ID}}\\t{{.Name}}").unwrap();
        assert_eq!(
            render_table(&t, &[("ID", "NETWORK ID")], &rows).unwrap(),
            "NETWORK ID   NAME\n0123         web\n4567         db"
        );
    }

    #[test]
    fn a_bad_template_is_a_clear_error() {
        let Err(e) = compile("{{.Name") else {
            panic!("an unclosed action compiled");
        };
        assert!(
            format!("{e:#}").contains("invalid --format template"),
            "{e:#}"
        );
    }
}
