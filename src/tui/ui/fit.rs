//! Fitting text to a width without changing its meaning: whole parts are dropped, least important
//! first, instead of cutting a value mid-way (`72 ms` never becomes `72m`, `PG 15.20` never
//! `PG 15.2`); and long lines wrap with their indent kept instead of being cut.

use ratatui::style::Style;
use ratatui::text::{Line, Span};

/// One part of a line and how much it matters: a higher `rank` is dropped first.
pub struct Part<'a> {
    pub rank: u8,
    pub spans: Vec<Span<'a>>,
    /// Free text (a reason) that may be cut with `…` rather than dropped, when enough of it fits.
    pub elastic: bool,
}

/// Columns an elastic part keeps at least; below that it is dropped.
const ELASTIC_MIN: usize = 12;

impl<'a> Part<'a> {
    pub fn new(rank: u8, spans: Vec<Span<'a>>) -> Part<'a> {
        Part {
            rank,
            spans,
            elastic: false,
        }
    }

    /// A part of one span that is cut with `…` when it does not fit whole.
    pub fn elastic(rank: u8, span: Span<'a>) -> Part<'a> {
        Part {
            rank,
            spans: vec![span],
            elastic: true,
        }
    }

    fn width(&self) -> usize {
        self.spans.iter().map(Span::width).sum()
    }
}

/// The parts that fit in `width`, in their order, dropping the highest rank first (the last of
/// equal rank first). Parts of rank 0 are never dropped (the terminal may then cut the line).
pub fn fit(mut parts: Vec<Part<'_>>, width: usize) -> Line<'_> {
    loop {
        let total = parts.iter().map(Part::width).sum::<usize>();
        if total <= width {
            break;
        }
        let drop = parts
            .iter()
            .enumerate()
            .filter(|(_, p)| p.rank > 0)
            .max_by_key(|(i, p)| (p.rank, *i))
            .map(|(i, _)| i);
        let Some(i) = drop else { break };
        let keep = parts[i].width().saturating_sub(total - width);
        if parts[i].elastic && keep >= ELASTIC_MIN {
            let p = &mut parts[i];
            let cut: String = p.spans[0].content.chars().take(keep - 1).collect();
            p.spans[0].content = format!("{cut}…").into();
            break;
        }
        parts.remove(i);
    }
    Line::from(parts.into_iter().flat_map(|p| p.spans).collect::<Vec<_>>())
}

/// `line` wrapped at word boundaries to `width` columns; continuation lines start with `indent`
/// spaces (help text under its description column, SQL under its statement). Styles are kept.
pub fn wrap(line: &Line<'_>, width: usize, indent: usize) -> Vec<Line<'static>> {
    let width = width.max(indent + 8);
    let cells: Vec<(char, Style)> = line
        .spans
        .iter()
        .flat_map(|s| {
            let style = line.style.patch(s.style);
            s.content.chars().map(move |c| (c, style))
        })
        .collect();
    if cells.len() <= width {
        return vec![to_line(&cells, 0, line.style)];
    }
    let mut out = Vec::new();
    let mut start = 0;
    let mut first = true;
    while start < cells.len() {
        let room = if first { width } else { width - indent };
        let mut end = (start + room).min(cells.len());
        if end < cells.len() {
            // Break after the last space in range, unless that leaves almost nothing.
            if let Some(space) = (start + room / 2..end).rev().find(|i| cells[*i].0 == ' ') {
                end = space + 1;
            }
        }
        let pad = if first { 0 } else { indent };
        out.push(to_line(&cells[start..end], pad, line.style));
        start = end;
        first = false;
        // A continuation starts at a word, not at the spaces the break left.
        while start < cells.len() && cells[start].0 == ' ' {
            start += 1;
        }
    }
    out
}

fn to_line(cells: &[(char, Style)], pad: usize, style: Style) -> Line<'static> {
    let mut spans: Vec<Span<'static>> = Vec::new();
    if pad > 0 {
        spans.push(Span::raw(" ".repeat(pad)));
    }
    // The padding span stays unstyled; text joins the last span of its style.
    let fixed = spans.len();
    for (c, s) in cells {
        let joins = spans.len() > fixed && spans.last().is_some_and(|l| l.style == *s);
        match spans.last_mut() {
            Some(last) if joins => last.content.to_mut().push(*c),
            _ => spans.push(Span::styled(c.to_string(), *s)),
        }
    }
    Line::from(spans).style(style)
}

/// Every line of `lines` wrapped to `width`, each continuing under its own leading whitespace
/// plus `hang` columns.
pub fn wrap_all(lines: &[Line<'_>], width: usize, hang: usize) -> Vec<Line<'static>> {
    lines
        .iter()
        .flat_map(|l| {
            let lead = l
                .spans
                .iter()
                .flat_map(|s| s.content.chars())
                .take_while(|c| *c == ' ')
                .count();
            wrap(l, width, lead + hang)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(l: &Line) -> String {
        l.spans.iter().map(|s| s.content.as_ref()).collect()
    }

    #[test]
    fn fit_drops_whole_parts_by_rank_never_cutting_a_value() {
        let parts = || {
            vec![
                Part::new(0, vec![Span::raw("orders")]),
                Part::new(3, vec![Span::raw(" │ db1:5432/orders")]),
                Part::new(2, vec![Span::raw(" │ PG 15.20")]),
                Part::new(0, vec![Span::raw(" │ TLS verify-full")]),
            ]
        };
        assert_eq!(
            text(&fit(parts(), 80)),
            "orders │ db1:5432/orders │ PG 15.20 │ TLS verify-full"
        );
        assert_eq!(
            text(&fit(parts(), 40)),
            "orders │ PG 15.20 │ TLS verify-full"
        );
        assert_eq!(text(&fit(parts(), 30)), "orders │ TLS verify-full");
        let reason = || {
            vec![
                Part::new(0, vec![Span::raw("health DEGRADED")]),
                Part::elastic(
                    5,
                    Span::raw(": drift in 1 revision(s): run `pgshift status`"),
                ),
                Part::new(0, vec![Span::raw(" │ runner lock free")]),
            ]
        };
        assert_eq!(
            text(&fit(reason(), 50)),
            "health DEGRADED: drift in 1 re… │ runner lock free"
        );
        assert_eq!(
            text(&fit(reason(), 40)),
            "health DEGRADED │ runner lock free"
        );
    }

    #[test]
    fn wrap_keeps_the_indent_and_breaks_at_words() {
        let l = Line::from("  -- step 1/1: upgrade 0004_add_documents_index (one transaction)");
        let w = wrap_all(&[l], 30, 2);
        let t: Vec<String> = w.iter().map(text).collect();
        assert!(t.len() > 1, "{t:?}");
        assert!(t.iter().all(|l| l.chars().count() <= 30), "{t:?}");
        assert!(t[1..].iter().all(|l| l.starts_with("    ")), "{t:?}");
        assert_eq!(
            t.join(" ").split_whitespace().collect::<Vec<_>>().join(" "),
            "-- step 1/1: upgrade 0004_add_documents_index (one transaction)"
        );
    }
}
