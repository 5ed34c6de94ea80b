#!/usr/bin/env python3
"""Checks one TLS report (RFC 8460 4.4) for the world tests.

usage: tlsrpt_check.py FILE FORMAT DOMAIN SUCCESS FAILURE [RESULT-TYPE MX]

FORMAT is "json" (a report as `tlsrpt show` prints it), "gzip" (the body of
an HTTPS POST) or "mail" (a Maildir file: RFC 8460 5.3 message). Exits 0
when the report is for DOMAIN with these summary counts (summed over its
policies) and, if given, a failure detail of RESULT-TYPE at MX; else prints
why and exits 1.
"""
import email
import email.policy
import gzip
import json
import sys

path, fmt, domain, ok, fail = sys.argv[1:6]
want_rt = sys.argv[6] if len(sys.argv) > 6 else None
want_mx = sys.argv[7] if len(sys.argv) > 7 else None


def die(msg):
    print(f"{path}: {msg}")
    sys.exit(1)


raw = open(path, "rb").read()
if fmt == "gzip":
    doc = gzip.decompress(raw)
elif fmt == "mail":
    m = email.message_from_bytes(raw, policy=email.policy.default)
    if m.get_content_type() != "multipart/report":
        die(f"content type {m.get_content_type()}")
    if m.get_param("report-type") != "tlsrpt":
        die("report-type is not tlsrpt")
    if m["TLS-Report-Domain"] != domain:
        die(f"TLS-Report-Domain {m['TLS-Report-Domain']}")
    if not m["TLS-Report-Submitter"]:
        die("no TLS-Report-Submitter")
    if not str(m["Subject"]).startswith(f"Report Domain: {domain} Submitter: "):
        die(f"Subject {m['Subject']}")
    parts = [p for p in m.iter_attachments()
             if p.get_content_type() == "application/tlsrpt+gzip"]
    if len(parts) != 1:
        die("no application/tlsrpt+gzip attachment")
    doc = gzip.decompress(parts[0].get_content())
else:
    doc = raw
r = json.loads(doc)
for k in ("organization-name", "date-range", "contact-info", "report-id",
          "policies"):
    if k not in r:
        die(f"no {k}")
if not r["date-range"]["start-datetime"].endswith("T00:00:00Z"):
    die("date-range does not start at midnight")
s = f = 0
details = []
for p in r["policies"]:
    pol = p["policy"]
    if pol["policy-domain"] != domain:
        die(f"policy-domain {pol['policy-domain']}")
    if pol["policy-type"] not in ("tlsa", "sts", "no-policy-found"):
        die(f"policy-type {pol['policy-type']}")
    # "tlsa": the records applied (none when the RRset could not be used)
    # and the MX host they belong to.
    if pol["policy-type"] == "tlsa" and not (
            isinstance(pol.get("policy-string"), list) and pol.get("mx-host")):
        die("tlsa policy without policy-string or mx-host")
    s += p["summary"]["total-successful-session-count"]
    f += p["summary"]["total-failure-session-count"]
    for d in p.get("failure-details", []):
        for k in ("result-type", "failed-session-count"):
            if k not in d:
                die(f"failure detail without {k}")
        # A session that connected names both ends; a host the policy
        # refused was never connected and has no addresses.
        if ("receiving-ip" in d) != ("sending-mta-ip" in d):
            die("failure detail with one address only")
        details.append((d["result-type"], d.get("receiving-mx-hostname")))
if (s, f) != (int(ok), int(fail)):
    die(f"counts {s}/{f}, want {ok}/{fail}")
if want_rt and (want_rt, want_mx) not in details:
    die(f"no failure detail {want_rt} at {want_mx}: {details}")
print(f"{path}: {domain} {s}/{f} report-id {r['report-id']}")
