#!/usr/bin/env python3
"""Generate danerelay.conf(5) from `danerelay config --doc`.

Usage: conf5.py PATH/TO/danerelay OUTPUT

The parameter table lives in one place, relay/base/relay_config.c (its printer
behind `config --doc`, also used for README.md's reference); this script
only turns that Markdown table into man(7) markup, so the page cannot drift
from the code. Fails (exit 1) on a table it does not understand.
"""
import re
import subprocess
import sys

HEAD = r""".TH DANERELAY.CONF 5 "" "danerelay" "File Formats"
.SH NAME
danerelay.conf \- configuration file of the danerelay DANE relay
.SH SYNOPSIS
.I /etc/danerelay/danerelay.conf
.SH DESCRIPTION
.B danerelay
reads one configuration file: the file given with
.BR \-c ,
else the one named by
.BR DANERELAY_CONF ,
else
.IR /etc/danerelay/danerelay.conf .
Each non-empty line that does not start with
.B #
has the form
.PP
.RS
.IB name " = " value
.RE
.PP
Names are the parameters below; a name that is not one of them is an
error, as is a value outside its range.
Durations take the suffixes
.BR ms ", " s ", " m ", " h ", " d ", " w
(seconds without one); sizes take
.BR k " and " m .
Lists are comma separated.
.PP
.B danerelay config
prints the values in effect,
.B "danerelay config \-n"
only those the file changes,
.B "danerelay config \-d"
the defaults, and
.B "danerelay config \-\-doc"
the table this page is generated from.
.B "danerelay serve"
rereads the file on
.BR SIGHUP
(except
.BR listen ,
.B metrics_listen
and
.BR spool_dir ,
which need a restart).
.SH PARAMETERS
"""

TAIL = r""".SH TLS POLICY FILE
.B tls_policy_file
holds one entry per line,
.IP
.RS
.I domain level
.RB [ until=\c
.IR YYYY-MM-DD ]
.RB [ reason=\(dq\c
.IR text \c
.BR \(dq ]
.RE
.PP
with
.B #
comments.
A leading dot
.RB ( .example.com )
matches every subdomain; an exact entry wins over the nearest parent one.
Levels are those of
.B tls_security_level
plus
.BR none .
.PP
.B until=
makes the entry a time-boxed exception: it applies through the end of that
day, UTC, and from the next day on it is skipped as if it were not in the
file (the next matching entry, else
.BR tls_security_level ,
decides).
The relay logs that once per entry, at warning level, as
.B event=policy\-exception\-expired
with the domain, the entry
.RI ( FILE : LINE )
and its reason.
.B reason=
says why the exception exists: double quotes around text with spaces,
.B \e\(dq
and
.B \e\e
inside them; it is logged with every delivery the entry decides
.RB ( policy_reason=
on the delivery line), kept in the queue
.RB ( a.policy_reason ,
shown by
.BR "queue show" ),
and an entry that switches DANE off logs
.B event=dane\-overridden
at warning level each time it is used.
Any other attribute, a malformed date, a date given twice or an unclosed
quote is an error.
With
.B policy_exceptions_require_reason = yes
every entry must have a reason.
.B danerelay check
warns about entries that expire within 7 days or have expired;
.B danerelay report
and
.B danerelay status
list the time-boxed entries still in effect with their days left.
.PP
Example:
.IP
.EX
broken.example may until=2027\-01\-15 reason="TLSA rollover broken, ticket 4711"
.EE
.SH FILES
.TP
.I /etc/danerelay/danerelay.conf
the default configuration file
.SH SEE ALSO
.BR danerelay (8),
.BR unbound.conf (5)
"""


def roff_text(s):
    """Markdown cell text -> roff: `code` in bold, escapes."""
    s = s.replace("\\", "\\e")
    out = []
    for i, part in enumerate(s.split("`")):
        if i % 2 == 1:
            out.append("\\fB" + part.replace("-", "\\-") + "\\fR")
        else:
            out.append(part)
    text = "".join(out)
    if text.startswith(".") or text.startswith("'"):
        text = "\\&" + text
    return text


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: conf5.py DANERELAY OUTPUT")
    doc = subprocess.run([sys.argv[1], "config", "--doc"], check=True,
                         capture_output=True, text=True).stdout
    rows = []
    for line in doc.splitlines():
        if not line.startswith("| `"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if len(cells) != 4 or not re.fullmatch(r"`[a-z0-9_]+`", cells[0]):
            sys.exit("conf5.py: unexpected row: " + line)
        rows.append(cells)
    if not rows:
        sys.exit("conf5.py: no parameters in `config --doc`")
    body = []
    for name, typ, default, desc in rows:
        body.append(".TP")
        body.append("\\fB%s\\fR (%s; default %s)" % (
            name.strip("`"), roff_text(typ), roff_text(default)))
        body.append(roff_text(desc))
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        f.write(HEAD + "\n".join(body) + "\n" + TAIL)


if __name__ == "__main__":
    main()
