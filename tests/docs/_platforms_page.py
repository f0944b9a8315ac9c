"""The platforms page (docs/platforms.md), written out from the presets and dialects
themselves so it cannot drift: ``python -m tests.docs._platforms_page`` rewrites it, and
``test_platforms`` checks that it is current."""

from __future__ import annotations

from collections.abc import Callable

from postback_lab.events._presets import PRESETS
from postback_lab.rules._dialects import AFFISE, BINOM, CAKE, EVERFLOW, KEITARO, TUNE, VOLUUM

from ._pages import ROOT

PATH = ROOT / "docs" / "platforms.md"
DIALECTS = {d.name: d for d in (CAKE, TUNE, EVERFLOW, AFFISE, KEITARO, VOLUUM, BINOM)}


def render() -> str:
    """The page's Markdown."""
    out: list[str] = []
    w = out.append
    w("# Platforms\n")
    w("Exports and postback URLs come from the platform you already run. A **preset** reads its")
    w("conversion export and its postback-log export with no hand mapping")
    w('(`read_events(path, preset="everflow")`, `import_log(path, log, preset="everflow")`, on the')
    w("command line `--source everflow`; `auto` guesses from the headers and says which it chose).")
    w("A **dialect** translates a postback URL pasted from the platform into our macros")
    w('(`dialect: keitaro` in a rule, `read_rules(path, dialect="keitaro")`, `--dialect keitaro`),')
    w("and says what it translated. Headers are matched ignoring case, spaces and punctuation;")
    w("columns a preset does not know stay in the frame under their own names and work as")
    w("macros; `rename=` (`--columns`) maps or renames anything and wins over the preset.")
    w("Headers below are written as they are matched: lower case, `_` for spaces and")
    w("punctuation (`Sub ID 1` is `sub_id_1`).\n")
    w("This page is the presets' own data, written out; each platform's section cites the public")
    w("documentation it follows.\n")
    w("| platform | preset | dialect | time layouts | separator |")
    w("|---|---|---|---|---|")
    for name, p in PRESETS.items():
        d = "yes" if name in DIALECTS else ("ours" if name == "integr8" else "no")
        lay = (
            ", ".join(f"`{x}`" for x in p.date_formats[:2])
            + (" …" if len(p.date_formats) > 2 else "")
            if p.date_formats
            else "ISO 8601"
        )
        sep = f"`{p.separator}`" if p.separator else "sniffed"
        if p.decimal_comma:
            sep += ", decimal comma"
        w(f"| {p.title} | `{name}` | {d} | {lay} | {sep} |")
    w("")
    _identity(w)
    for name, p in PRESETS.items():
        w(f"## {p.title}\n")
        if p.note:
            w(p.note + "\n")
        w(
            "Sources: " + ", ".join(f"<{u}>" for u in p.docs) + "\n"
            if p.docs
            else "Sources: none could be read; the mapping follows the platform's usual export.\n"
        )
        w("**Conversion export** (header → our column):\n")
        w("| header | column |")
        w("|---|---|")
        for k, targets in p.columns.items():
            w(f"| `{k}` | {', '.join(f'`{t}`' for t in targets)} |")
        w("")
        if p.statuses:
            groups = {}
            for k, v in p.statuses.items():
                groups.setdefault(v, []).append(k)
            w(
                "**Statuses**: "
                + "; ".join(
                    f"`{v}` ← " + ", ".join(f"`{k}`" for k in ks) for v, ks in groups.items()
                )
                + "\n"
            )
        if p.default_status:
            w(f"Rows without a status column are `{p.default_status}`.\n")
        if p.transaction_pair:
            click, nth = (" / ".join(f"`{k}`" for k in keys) for keys in p.transaction_pair)
            w(
                f"**Conversion id**: the pair {click} `:` {nth} (the first alone when the second is blank).\n"
            )
        if p.event_flag:
            w(
                f"**Events**: rows whose `{p.event_flag}` is true are `event` rows, not `conversion`.\n"
            )
        if p.labelled_ids:
            cols = ", ".join(f"`{c}`" for c in p.labelled_ids)
            w(
                f"**Labelled ids**: {cols} cells like `(101) Crypto App Install` hold the id `101`.\n"
            )
        if p.log_columns:
            w("**Postback-log export** (header → log column):\n")
            w("| header | log column |")
            w("|---|---|")
            for k, v in p.log_columns.items():
                w(f"| `{k}` | `{v}` |")
            w("")
        if name in DIALECTS:
            dl = DIALECTS[name]
            w(f"**Dialect** (`dialect: {name}`; <{dl.docs}>):\n")
            w("| their macro | ours | why |")
            w("|---|---|---|")
            for k, (ours, why) in dl.macros.items():
                w(f"| `{k}` | `{ours}` | {why} |")
            w("")
    return "\n".join(out).rstrip() + "\n"


def _headers(mapping: dict[str, tuple[str, ...]], column: str) -> str:
    found = [f"`{k}`" for k, targets in mapping.items() if column in targets]
    return ", ".join(found) or "—"


def _identity(w: Callable[[str], None]) -> None:
    """The identity table: which headers name the conversion and the click, and how each
    platform's postback log links to dispatches."""
    w("## Identity: the conversion, the click, and how each log links\n")
    w("`transaction_id` names one conversion on its platform and `click_id` the click it came")
    w("from; every preset fills both where the export has them (a postback fires once per rule")
    w("and status a *conversion* reaches, so the conversion's id is the key). An imported")
    w("postback log links each row to a dispatch by the conversion id when the log has one,")
    w("else by the click id through the events (the plan keeps each event's click id), then by")
    w("rule and, when the log has it, the conversion's status; when a click has several")
    w("conversions, the one due most recently before the row fired. reconcile, send and")
    w("backfill share this one rule. A row that links to no dispatch is *unexpected*")
    w("(reconcile counts it with examples), and a backfill stops before sending, exit 1, when")
    w("such rows could be deliveries of what it would send (`--allow-unlinked` sends anyway).\n")
    w(
        "| platform | conversion id (`transaction_id`) | click id (`click_id`) | its log names | the log links by |"
    )
    w("|---|---|---|---|---|")
    for p in PRESETS.values():
        if p.transaction_pair:
            conv = " `:` ".join("/".join(f"`{k}`" for k in keys) for keys in p.transaction_pair)
        else:
            conv = _headers(p.columns, "transaction_id")
        click = _headers(p.columns, "click_id")
        log_conv = [k for k, v in p.log_columns.items() if v == "transaction_id"]
        log_click = [k for k, v in p.log_columns.items() if v == "click_id"]
        names = []
        if p.transaction_pair:
            names.append("the pair")
        if log_conv:
            names.append("conversion: " + ", ".join(f"`{k}`" for k in log_conv))
        if log_click:
            names.append("click: " + ", ".join(f"`{k}`" for k in log_click))
        if p.transaction_pair or log_conv:
            how = "conversion id" + (", else click id through the events" if log_click else "")
        else:
            how = "click id through the events"
        w(f"| {p.title} | {conv} | {click} | {'; '.join(names)} | {how} |")
    w("")
    w("A log that names neither links by `--columns 'Header=transaction_id'` (or `click_id`).")
    w("Statuses a platform spells its own way map with `status_map=` (`--status-map")
    w("sale=approved,trash=rejected`), and `ignore_status=` (`--ignore-status ping,test`) leaves")
    w("rows out, counted; an unknown status is quarantined and counted, never guessed. The rules")
    w("file's [`statuses:`](rules.md#your-own-statuses) do the same for events and, with")
    w("`import-log --rules`, for a postback log; the flags win, status by status.\n")


if __name__ == "__main__":
    PATH.write_text(render(), encoding="utf-8")
