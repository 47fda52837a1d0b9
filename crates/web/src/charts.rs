//! Server-side SVG charts for the reports page.
//!
//! Each function returns one complete `<svg>` element as a string, ready to put
//! into the HTML. Nothing here panics: empty input, NaN, infinities and negative
//! values are all handled, and every piece of text is XML-escaped.

const MAX_LABEL_CHARS: usize = 28;
const COLOURS: [&str; 4] = ["#3b6ea5", "#c0504d", "#4f9a58", "#8064a2"];
// Bar chart: rows of 28 px below the title band; bars start at x 204 and are at
// most 356 px long, which leaves 80 px on the right for the value.
const BAR_TOP: f64 = 36.0;
const BAR_START: f64 = 204.0;
const BAR_SPACE: f64 = 356.0;
// Line chart (640 × 240): the plot area; x labels and the legend go below it.
const LEFT: f64 = 48.0;
const RIGHT: f64 = 624.0;
const TOP: f64 = 36.0;
const BOTTOM: f64 = 184.0;
const MAX_X_LABELS: usize = 8;

/// One bar: a label and a value.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    /// What the bar stands for, shown on the left (cut to 28 characters).
    pub label: String,
    /// How long the bar is. Zero, negative and non-finite values draw no bar.
    pub value: f64,
}

/// A series of points over days for a line chart (e.g. conversations per day).
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The name shown in the legend.
    pub name: String,
    /// The points in order: an x label such as "11-21" and a value.
    pub points: Vec<(String, f64)>,
}

/// Draws a horizontal bar chart: one row per bar, the label on the left, the bar,
/// and the value with `unit` (e.g. "", "%", " min") printed at the bar's end.
///
/// The chart is 640 px wide and 28 px taller for every row. Bars are as long as
/// their share of the largest value. With no bars the chart says "No data".
pub fn bar_chart(title: &str, bars: &[Bar], unit: &str) -> String {
    let height = BAR_TOP + bars.len().max(1) as f64 * 28.0 + 12.0;
    let mut svg = open_svg("bar-chart", title, height);
    if bars.is_empty() {
        svg.push_str(&no_data(BAR_TOP + 18.0));
    }
    let largest = bars.iter().map(|b| finite(b.value)).fold(0.0, f64::max);
    let unit = escape(unit);
    for (i, bar) in bars.iter().enumerate() {
        let top = BAR_TOP + i as f64 * 28.0;
        let value = finite(bar.value);
        // No bar for zero or negative values; `largest` is 0 only when all are.
        let width = value.max(0.0) / largest.max(f64::MIN_POSITIVE) * BAR_SPACE;
        let shown = format!("{}{unit}", num(value));
        svg.push_str(&format!(
            "<g class=\"row\"><title>{full}: {shown}</title>\
             <text class=\"label\" x=\"196\" y=\"{ty}\" text-anchor=\"end\">{label}</text>\
             <rect class=\"bar\" x=\"{BAR_START}\" y=\"{by}\" width=\"{w}\" height=\"20\" \
             fill=\"#3b6ea5\"/><text class=\"value\" x=\"{vx}\" y=\"{ty}\">{shown}</text></g>",
            full = escape(&bar.label),
            label = escape(&shorten(&bar.label, MAX_LABEL_CHARS)),
            ty = num(top + 18.0),
            by = num(top + 4.0),
            w = num(width),
            vx = num(BAR_START + width + 6.0),
        ));
    }
    svg + "</svg>"
}

/// Draws a line chart of one or more series over the x labels of the first one.
///
/// The y axis runs from 0 to a round maximum (1, 2 or 5 × 10^n) with four
/// gridlines and their numbers. At most eight x labels are shown, evenly spaced.
/// Each series is a `<polyline class="series series-N">` (N counts from 1) and
/// gets an entry in the legend. The chart is 640 × 240 px. All-zero data still
/// draws a chart (y axis up to 1); with no points at all it says "No data".
pub fn line_chart(title: &str, series: &[Series]) -> String {
    let mut svg = open_svg("line-chart", title, 240.0);
    let n = series.iter().map(|s| s.points.len()).max().unwrap_or(0);
    if n == 0 {
        return svg + &no_data(120.0) + "</svg>";
    }
    let all = series.iter().flat_map(|s| s.points.iter());
    let max = nice_max(all.map(|(_, v)| finite(*v)).fold(0.0, f64::max));
    let y_of = |v: f64| BOTTOM - finite(v).max(0.0).min(max) / max * (BOTTOM - TOP);
    let x_of = |i: usize| match n {
        1 => (LEFT + RIGHT) / 2.0,
        _ => LEFT + i as f64 * (RIGHT - LEFT) / (n - 1) as f64,
    };

    for k in 0..=4 {
        let value = max * f64::from(k) / 4.0;
        let class = if k == 0 { "axis" } else { "grid" };
        svg.push_str(&format!(
            "<line class=\"{class}\" x1=\"{LEFT}\" y1=\"{y}\" x2=\"{RIGHT}\" y2=\"{y}\" \
             stroke=\"#ccc\"/><text class=\"tick\" x=\"42\" y=\"{y}\" dy=\"4\" \
             text-anchor=\"end\">{v}</text>",
            y = num(y_of(value)),
            v = num(value),
        ));
    }

    let step = n.div_ceil(MAX_X_LABELS).max(1);
    let labels = series.first().map(|s| s.points.as_slice()).unwrap_or(&[]);
    for (i, (label, _)) in labels.iter().enumerate().step_by(step) {
        svg.push_str(&format!(
            "<text class=\"x-label\" x=\"{}\" y=\"200\" text-anchor=\"middle\">{}</text>",
            num(x_of(i)),
            escape(&shorten(label, 12)),
        ));
    }

    for (k, s) in series.iter().enumerate() {
        let colour = COLOURS[k % COLOURS.len()];
        let class = format!("series series-{}", k + 1);
        let xy = |i: usize, v: f64| (num(x_of(i)), num(y_of(v)));
        let points: Vec<String> = (s.points.iter().enumerate())
            .map(|(i, (_, v))| xy(i, *v))
            .map(|(x, y)| format!("{x},{y}"))
            .collect();
        svg.push_str(&format!(
            "<polyline class=\"{class}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" \
             points=\"{}\"/>",
            points.join(" ")
        ));
        if let [(_, v)] = s.points.as_slice() {
            // A single point makes no line, so mark it with a dot.
            let (x, y) = xy(0, *v);
            svg.push_str(&format!(
                "<circle class=\"dot {class}\" cx=\"{x}\" cy=\"{y}\" r=\"3\" fill=\"{colour}\"/>"
            ));
        }
        let x = LEFT + k as f64 * 150.0;
        svg.push_str(&format!(
            "<g class=\"legend {class}\"><rect x=\"{x}\" y=\"222\" width=\"10\" height=\"10\" \
             fill=\"{colour}\"/><text x=\"{tx}\" y=\"231\">{name}</text></g>",
            x = num(x),
            tx = num(x + 14.0),
            name = escape(&shorten(&s.name, 18)),
        ));
    }
    svg + "</svg>"
}

/// The opening `<svg>` tag (640 px wide), its `<title>` and the visible title.
fn open_svg(kind: &str, title: &str, height: f64) -> String {
    let (t, h) = (escape(title), num(height));
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart {kind}\" role=\"img\" \
         aria-label=\"{t}\" width=\"640\" height=\"{h}\" viewBox=\"0 0 640 {h}\" \
         font-family=\"sans-serif\" font-size=\"12\"><title>{t}</title>\
         <text class=\"chart-title\" x=\"8\" y=\"20\" font-size=\"14\" font-weight=\"bold\">{t}</text>"
    )
}

/// A centred "No data" line at height `y`.
fn no_data(y: f64) -> String {
    let y = num(y);
    format!("<text class=\"empty\" x=\"320\" y=\"{y}\" text-anchor=\"middle\">No data</text>")
}

/// Escapes text for XML content and attribute values. Control characters that
/// XML does not allow are dropped.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c.is_control() || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// Cuts `s` to at most `max` characters (not bytes), ending with "…" when cut.
fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let cut: String = s.chars().take(max.saturating_sub(1)).collect();
    cut + "…"
}

/// The smallest 1, 2 or 5 × 10^n that is at least `v`; 1 for zero, negative or
/// non-finite `v`.
fn nice_max(v: f64) -> f64 {
    if !v.is_finite() || v <= 0.0 {
        return 1.0;
    }
    let base = 10f64.powf(v.log10().floor());
    let nice = [1.0, 2.0, 5.0, 10.0].map(|m| m * base);
    nice.into_iter()
        .find(|c| c.is_finite() && *c >= v)
        .unwrap_or(v)
}

/// `v` itself when finite, otherwise 0.
fn finite(v: f64) -> f64 {
    if v.is_finite() { v } else { 0.0 }
}

/// A number with at most one decimal: `12`, `12.5`. Non-finite prints as `0`.
fn num(v: f64) -> String {
    let v = finite(v);
    let rounded = (v * 10.0).round() / 10.0;
    let r = if rounded.is_finite() { rounded } else { v };
    if r == 0.0 {
        "0".to_string()
    } else if r.fract() == 0.0 {
        format!("{r:.0}")
    } else {
        format!("{r:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bars(items: &[(&str, f64)]) -> Vec<Bar> {
        let bar = |(label, value): &(&str, f64)| Bar {
            label: label.to_string(),
            value: *value,
        };
        items.iter().map(bar).collect()
    }

    fn days(name: &str, values: &[f64]) -> Series {
        let day = |(i, v): (usize, &f64)| (format!("11-{:02}", i + 1), *v);
        let points = values.iter().enumerate().map(day).collect();
        let name = name.to_string();
        Series { name, points }
    }

    /// The value of `attr` in every element that starts with `tag`.
    fn attrs(svg: &str, tag: &str, attr: &str) -> Vec<String> {
        let key = format!(" {attr}=\"");
        let value = |rest: &str| {
            let element = &rest[..rest.find('>')?];
            let start = element.find(&key)? + key.len();
            Some(element[start..start + element[start..].find('"')?].to_string())
        };
        svg.split(tag).skip(1).filter_map(value).collect()
    }

    /// The text inside every `<text class="{class}" ...>`.
    fn texts(svg: &str, class: &str) -> Vec<String> {
        let tag = format!("<text class=\"{class}\"");
        let text = |rest: &str| Some(rest.get(rest.find('>')? + 1..rest.find("</text>")?)?.into());
        svg.split(&tag).skip(1).filter_map(text).collect()
    }

    fn bar_widths(svg: &str) -> Vec<f64> {
        let parse = |w: &String| w.parse().unwrap_or(f64::NAN);
        attrs(svg, "<rect class=\"bar\"", "width")
            .iter()
            .map(parse)
            .collect()
    }

    #[test]
    fn a_label_with_markup_is_escaped() {
        let svg = bar_chart("Tags <&>", &bars(&[("<b>\"Tom\" & 'Jo'</b>", 1.0)]), "<%>");
        assert!(svg.contains("&lt;b&gt;&quot;Tom&quot; &amp; &#39;Jo&#39;&lt;/b&gt;"));
        assert!(svg.contains("aria-label=\"Tags &lt;&amp;&gt;\""));
        assert!(svg.contains("<title>Tags &lt;&amp;&gt;</title>"));
        assert!(svg.contains("1&lt;%&gt;</text>"));
        assert!(!svg.contains("<b>") && !svg.contains("<%>") && !svg.contains("'Jo"));
        let line = line_chart("x", &[days("<i>", &[1.0])]);
        assert!(line.contains(">&lt;i&gt;</text>") && !line.contains("<i>"));
        assert_eq!(escape("a\u{0}b\u{1b}c\n"), "abc\n");
    }

    #[test]
    fn an_empty_chart_says_no_data() {
        let no_points = line_chart("E", &[days("", &[])]);
        for svg in [bar_chart("E", &[], ""), line_chart("E", &[]), no_points] {
            assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>"));
            assert!(svg.contains("role=\"img\"") && svg.contains("viewBox=\"0 0 640 "));
            assert_eq!(texts(&svg, "empty"), ["No data"]);
        }
    }

    #[test]
    fn bars_are_as_long_as_their_share_of_the_largest() {
        let team = bars(&[("Anna", 40.0), ("Ben", 20.0), ("Cleo", 10.0)]);
        let svg = bar_chart("Handled", &team, " min");
        assert_eq!(bar_widths(&svg), [356.0, 178.0, 89.0]);
        assert_eq!(texts(&svg, "value"), ["40 min", "20 min", "10 min"]);
        assert_eq!(texts(&svg, "label"), ["Anna", "Ben", "Cleo"]);
        assert!(svg.contains("height=\"132\"") && svg.contains("class=\"chart bar-chart\""));
    }

    #[test]
    fn nan_and_negative_values_draw_nothing_and_never_panic() {
        let (nan, inf) = (f64::NAN, f64::INFINITY);
        let values = [nan, -5.0, inf, -inf, 0.0, -0.0, 2.5];
        let odd = bars(&values.map(|v| ("x", v)));
        let svg = bar_chart("Odd", &odd, "%");
        assert_eq!(bar_widths(&svg), [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 356.0]);
        let shown = texts(&svg, "value");
        assert_eq!(shown, ["0%", "-5%", "0%", "0%", "0%", "0%", "2.5%"]);
        let only_bad = bar_chart("Odd", &odd[..6], "");
        assert!(bar_widths(&only_bad).iter().all(|w| *w == 0.0));
        let line = line_chart("Odd", &[days("a", &values), days("b", &[f64::MAX, 1e-300])]);
        for svg in [svg, only_bad, line] {
            assert!(!svg.contains("NaN") && !svg.contains("inf"));
        }
    }

    #[test]
    fn a_long_chinese_label_is_cut_by_characters() {
        let label = "客服团队".repeat(10);
        let svg = bar_chart("Teams", &bars(&[(&label, 3.0)]), "");
        let shown = texts(&svg, "label");
        assert_eq!(shown.len(), 1);
        assert_eq!(shown[0].chars().count(), 28);
        assert!(shown[0].ends_with('…') && label.starts_with(shown[0].trim_end_matches('…')));
        assert!(svg.contains(&format!("<title>{label}: 3</title>")));
        assert_eq!(shorten("short", 28), "short");
    }

    #[test]
    fn many_days_show_at_most_eight_x_labels() {
        let svg = line_chart("Per day", &[days("a", &[3.0; 30])]);
        let labels = texts(&svg, "x-label");
        assert!((2..=8).contains(&labels.len()), "{labels:?}");
        assert_eq!(labels[0], "11-01");
        let points = attrs(&svg, "<polyline", "points");
        assert_eq!(points.len(), 1);
        assert_eq!(points[0].split(' ').count(), 30);
        let few = line_chart("Few", &[days("a", &[1.0; 5])]);
        assert_eq!(texts(&few, "x-label").len(), 5);
    }

    #[test]
    fn the_y_axis_ends_on_a_nice_number() {
        let svg = line_chart("Per day", &[days("a", &[12.0, 42.0, 7.0])]);
        assert_eq!(texts(&svg, "tick"), ["0", "12.5", "25", "37.5", "50"]);
        assert_eq!(attrs(&svg, "<line class=\"grid\"", "y1").len(), 4);
        let input = [0.0, 1.0, 1.2, 3.0, 7.0, 42.0, 100.0, 0.03, f64::NAN, -3.0];
        let want = [1.0, 1.0, 2.0, 5.0, 10.0, 50.0, 100.0, 0.05, 1.0, 1.0];
        assert_eq!(input.map(nice_max), want);
        let zeros = line_chart("Quiet", &[days("a", &[0.0, 0.0])]);
        assert_eq!(texts(&zeros, "tick").last().map(String::as_str), Some("1"));
    }

    #[test]
    fn each_series_gets_its_own_class_colour_and_legend_entry() {
        let team = |i| days(&format!("Team {i}"), &[1.0]);
        let svg = line_chart("Teams", &(1..=5).map(team).collect::<Vec<_>>());
        let classes = attrs(&svg, "<polyline", "class");
        let wanted: Vec<String> = (1..=5).map(|i| format!("series series-{i}")).collect();
        assert_eq!(classes, wanted);
        let strokes = attrs(&svg, "<polyline", "stroke");
        assert_eq!(strokes, [&COLOURS[..], &COLOURS[..1]].concat());
        assert!(svg.contains(">Team 5</text>") && svg.contains("<circle class=\"dot series"));
    }

    #[test]
    fn numbers_have_at_most_one_decimal() {
        let inputs = [12.0, 12.54, -0.04, 0.25, f64::NAN, f64::INFINITY];
        assert_eq!(inputs.map(num), ["12", "12.5", "0", "0.3", "0", "0"]);
    }
}
