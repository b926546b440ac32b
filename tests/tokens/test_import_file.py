"""Reading an allocation file: encodings, separators, quoting, formulas, limits, XLSX."""

import io
import zipfile

import openpyxl
import pytest

from asksage_admin.lib.sheets import SheetError, read_sheet
from asksage_admin.lib.xlsx_reader import MAX_EXPANDED_BYTES
from tokens.imports.parse import parse_allocation_file

INF, EMB = "max_inference_tokens", "max_embedding_tokens"
HEADER = "email,max_inference_tokens,max_embedding_tokens\n"


def parse(data: bytes | str, name: str = "limits.csv", max_rows: int = 100):
    raw = data.encode() if isinstance(data, str) else data
    return parse_allocation_file(read_sheet(raw, name, max_rows=max_rows))


def xlsx(rows: list[list[object]]) -> bytes:
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_it_reads_a_plain_csv_with_suffixed_amounts():
    file = parse(HEADER + "Bob@Example.com,250k,1.5M\n")
    (row,) = file.rows
    assert (row.email, row.values, row.error) == (
        "bob@example.com",
        {INF: 250_000, EMB: 1_500_000},
        "",
    )
    assert (file.kind, file.encoding, file.separator) == ("CSV", "UTF-8", "comma")


def test_it_reads_excels_utf8_byte_order_mark():
    file = parse(b"\xef\xbb\xbf" + (HEADER + "bob@example.com,300000,\n").encode())
    assert file.rows[0].values == {INF: 300_000, EMB: None}  # empty: keep the stored value


def test_it_reads_semicolons_and_quoted_amounts_with_commas():
    text = 'email;max_inference_tokens\nbob@example.com;"1,500,000"\n'
    file = parse(text)
    assert file.separator == "semicolon"
    assert file.rows[0].values == {INF: 1_500_000}
    assert file.columns == [INF]


def test_it_follows_excels_sep_line():
    file = parse("sep=;\r\nemail;max_embedding_tokens\r\nbob@example.com;2m\r\n")
    assert file.rows[0].values == {EMB: 2_000_000}


def test_it_reads_tab_separated_text_and_utf16():
    text = "email\tmax_inference_tokens\nbob@example.com\t400 000\n"
    assert parse(text).rows[0].values == {INF: 400_000}
    file = parse(text.encode("utf-16"))  # Excel's "Unicode text": UTF-16 with a BOM, tabs
    assert (file.encoding, file.rows[0].values) == ("UTF-16", {INF: 400_000})


def test_it_reads_a_latin1_file_as_windows_1252():
    data = "email,max_inference_tokens,name\nbob@example.com,300k,José Müller\n".encode("latin-1")
    file = parse(data)
    assert file.encoding == "Windows-1252"
    assert file.rows[0].values == {INF: 300_000} and file.ignored == ["name"]


@pytest.mark.parametrize("cell", ["=1+1", "@SUM(A1:A2)", "+A1*2", '=HYPERLINK("x")', "-A1"])
def test_a_formula_is_text_and_an_invalid_amount(cell):
    (row,) = parse(HEADER + f'bob@example.com,"{cell}",\n').rows
    assert "spreadsheet formula" in row.error


def test_a_formula_in_the_email_column_is_refused_even_when_it_looks_like_an_email():
    (row,) = parse(HEADER + "=cmd@example.com,300k,\n").rows
    assert "spreadsheet formula, not an email" in row.error


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("bob@example.com,lots,", "is not an amount"),
        ("bob@example.com,-5,", "cannot be negative"),
        ("bob@example.com,1.5,", "is not an amount"),
        ("not-an-email,300k,", "is not an email address"),
        (",300k,", "The email is missing"),
        ("bob@example.com,,", "No Max value is given"),
    ],
)
def test_each_bad_row_says_why(line, message):
    (row,) = parse(HEADER + line + "\n").rows
    assert message in row.error


def test_an_email_given_twice_refuses_every_row_of_it():
    file = parse(HEADER + "bob@example.com,300k,\nBOB@example.com,400k,\nann@example.com,1M,\n")
    assert [bool(r.error) for r in file.rows] == [True, True, False]
    assert "rows 2, 3" in file.rows[0].error


def test_a_huge_cell_refuses_the_file_in_words():
    data = HEADER + "bob@example.com," + "9" * 200_000 + ",\n"
    with pytest.raises(SheetError, match="cannot be read"):
        parse(data)


def test_a_long_cell_under_the_csv_limit_is_a_row_error_quoted_short():
    (row,) = parse(HEADER + "bob@example.com," + "9" * 5000 + ",\n").rows
    assert "too long" in row.error and len(row.error) < 300


def test_too_many_rows_refuses_the_file():
    text = HEADER + "".join(f"u{n}@example.com,300k,\n" for n in range(11))
    with pytest.raises(SheetError, match="more than 10 rows"):
        parse(text, max_rows=10)
    assert len(parse(text, max_rows=11).rows) == 11


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not text"),
        (b"name,amount\nbob,300k\n", "must name the columns"),
        (HEADER.encode(), "no users"),
        (b"\xff\xfe\x00", "UTF-16"),
    ],
)
def test_a_file_that_cannot_be_read_says_why(data, message):
    with pytest.raises(SheetError, match=message):
        parse(data)


def test_it_reads_the_first_sheet_of_an_xlsx():
    data = xlsx(
        [
            ["Email", "Max Inference Tokens", "Max Embedding Tokens"],
            ["bob@example.com", 300000, "1.5M"],
            ["ann@example.com", "=1+1", None],
        ]
    )
    file = parse(data, "limits.xlsx")
    assert file.kind == "XLSX"
    assert file.rows[0].values == {INF: 300_000, EMB: 1_500_000}
    assert "spreadsheet formula" in file.rows[1].error


def test_an_xlsx_over_its_row_limit_is_refused_without_reading_on():
    data = xlsx([["email", "max_inference_tokens"]] + [[f"u{n}@x.org", 1] for n in range(50)])
    with pytest.raises(SheetError, match="more than 20 rows"):
        parse(data, "big.xlsx", max_rows=20)


def _rezip(data: bytes, change) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            target.writestr(info.filename, change(info.filename, source.read(info)))
    return out.getvalue()


def test_a_zip_bomb_is_refused_by_its_expanded_size():
    data = _rezip(
        xlsx([["email", "max_inference_tokens"]]),
        lambda name, body: (
            body + (b" " * (MAX_EXPANDED_BYTES + 1) if name.endswith("sheet1.xml") else b"")
        ),
    )
    assert len(data) < 1_000_000  # small upload, huge expansion
    with pytest.raises(SheetError, match="expands to"):
        parse(data, "bomb.xlsx")


def test_an_xml_entity_bomb_is_refused_not_expanded():
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
    )

    def change(name, body):
        if name.endswith("sheet1.xml"):
            return laughs + body.split(b"?>", 1)[-1]
        return body

    with pytest.raises(SheetError, match=r"cannot be read \(EntitiesForbidden\)"):
        parse(_rezip(xlsx([["email", "max_inference_tokens"], ["a@b.org", 1]]), change), "x.xlsx")


def test_an_old_xls_or_a_damaged_workbook_says_what_to_do():
    with pytest.raises(SheetError, match=r"\.xlsx"):
        parse(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "old.xls")
    with pytest.raises(SheetError, match=r"\.xlsx"):
        parse(b"PK\x03\x04garbage", "broken.xlsx")
