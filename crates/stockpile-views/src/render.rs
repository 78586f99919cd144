//! Escaping for the text renderings: CSV fields (RFC 4180) and HTML text and attribute
//! values. Every piece of data that reaches a rendering goes through one of these; the
//! renderings write markup and separators only around their output.

/// Line ending of CSV records (RFC 4180 asks for CRLF; spreadsheet tools expect it).
pub(crate) const CSV_LINE_END: &str = "\r\n";

/// Appends one CSV field. It is quoted when it contains a comma, a quote, CR or LF,
/// starts or ends with a space (some readers trim), or starts with `#` (section titles
/// start with one); quotes inside are doubled.
pub(crate) fn csv_field(out: &mut String, field: &str) {
    let quote = field.contains([',', '"', '\r', '\n'])
        || field.starts_with([' ', '#'])
        || field.ends_with(' ');
    if !quote {
        out.push_str(field);
        return;
    }
    out.push('"');
    for c in field.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
}

/// Appends one CSV record and its line end.
pub(crate) fn csv_record<S: AsRef<str>>(out: &mut String, fields: &[S]) {
    for (number, field) in fields.iter().enumerate() {
        if number > 0 {
            out.push(',');
        }
        csv_field(out, field.as_ref());
    }
    out.push_str(CSV_LINE_END);
}

/// `text` with the five characters that matter in HTML text and quoted attribute values
/// replaced by character references, so data can never open or close markup.
pub fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        let mut out = String::new();
        csv_record(
            &mut out,
            &[
                "plain",
                "a,b",
                "say \"hi\"",
                "two\nlines",
                "#hash",
                " pad",
                "",
            ],
        );
        assert_eq!(
            out,
            "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\"#hash\",\" pad\",\r\n"
        );
    }

    #[test]
    fn html_escaping_leaves_no_markup() {
        assert_eq!(
            html_escape("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }
}
