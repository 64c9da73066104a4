"""Shows a version's lineage (ml.core.lineage.describe_push) to people: an indented tree for
the terminal, Graphviz DOT, and a self-contained HTML page with the graph drawn as SVG, laid
out by layers here (no JavaScript, nothing fetched), so the page opens anywhere."""
from __future__ import annotations

import html
import json
from typing import Dict, List, Optional

KEY_METRICS = ("auc", "auc_precision_recall", "binary_accuracy", "calibration",
               "binary_crossentropy", "example_count", "perplexity", "token_accuracy")


def _version(ref: Optional[Dict]) -> str:
    if ref is None:
        return "none"
    served = f"v{ref['serving_version']}" if ref.get("serving_version") is not None else "never served"
    return f"{served} (Model #{ref['model_artifact_id']})"


def _run(execution: Optional[Dict]) -> str:
    if not execution:
        return "not run"
    return f"{execution['component']} #{execution['execution_id']} {execution['state']}, {execution['duration_s']:.1f}s"


def _figure(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) and not float(value).is_integer() else f"{value:g}"


def metrics_line(metrics: Dict, baseline: Dict) -> str:
    parts = []
    for name in KEY_METRICS:
        if name in metrics:
            against = f" (baseline {_figure(baseline[name])})" if name in baseline else ""
            parts.append(f"{name} {_figure(metrics[name])}{against}")
    return ", ".join(parts) or "no metrics recorded"


def span_range(spans: List[int]) -> str:
    spans = sorted(s for s in spans if s is not None)
    if not spans:
        return "none"
    if spans == list(range(spans[0], spans[-1] + 1)) and len(spans) > 1:
        return f"{spans[0]}-{spans[-1]}"
    return ", ".join(map(str, spans))


def _compact(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(", ", ": "))


def tree_lines(lineage: Dict) -> List[str]:
    """The lineage as an indented tree, from the push down to each span's checks."""
    labels = lineage.get("labels") or []
    push = lineage["push"]
    lines = [f"{lineage['model']} v{lineage['version']}"
             + (f" (labels: {', '.join(labels)})" if labels else " (no label)")]
    lines.append(f"  push: PushedModel #{push['artifact_id']} at {push['pushed_at']}, "
                 f"key {push['push_key'] or 'none'} -> {push['destination']}  [{_run(push['execution'])}]")
    infra = lineage.get("infra_blessing")
    if infra:
        lines.append(f"    pre-push serving check: {'passed' if infra['blessed'] else 'failed'} "
                     f"(p50 {infra.get('latency_p50_ms') or 0:.1f} ms, p99 "
                     f"{infra.get('latency_p99_ms') or 0:.1f} ms), InfraBlessing #{infra['artifact_id']}"
                     f"  [{_run(infra if 'execution_id' in infra else None)}]")
    evaluation = lineage.get("evaluation")
    if evaluation:
        verdict = {True: "blessed", False: "not blessed", None: "no verdict"}[evaluation["blessed"]]
        lines.append(f"    evaluation: {verdict} against baseline {_version(evaluation['baseline'])}, "
                     f"ModelBlessing #{evaluation['blessing_artifact_id']}  [{_run(evaluation)}]")
        lines.append(f"      {metrics_line(evaluation['metrics'], evaluation['baseline_metrics'])}")
    model = lineage.get("model_artifact")
    lines.append(f"    model: Model #{model['artifact_id']} {model['uri']}" if model else "    model: unknown")
    trainer = lineage.get("trainer")
    if trainer:
        code = (f"run_fn {trainer['run_fn']}" if trainer.get("run_fn")
                else f"module_file {trainer.get('module_file')}")
        lines.append(f"      trainer: {code}  [{_run(trainer)}]")
        lines.append(f"        train_args {_compact(trainer['train_args'])}, "
                     f"custom_config {_compact(trainer['custom_config'])}")
        lines.append(f"        warm start from: {_version(trainer['warm_start_parent'])}")
    transform = lineage.get("transform")
    if transform:
        graph = transform["transform_graph"]
        lines.append(f"      transform graph: TransformGraph #{graph['artifact_id']}, preprocessing_fn "
                     f"{transform.get('preprocessing_fn') or transform.get('module_file')}  [{_run(transform)}]")
    schema = lineage.get("schema")
    if schema:
        lines.append(f"      schema: Schema #{schema['artifact_id']} from {schema.get('schema_file')}")
    lines.append(f"      examples: spans {span_range(lineage['spans'])}")
    for entry in lineage["examples"]:
        period = entry.get("period") or {}
        lines.append(f"        span {entry['span']} ({period.get('start')} .. {period.get('end')}): "
                     f"Examples #{entry['artifact_id']}  [{_run(entry['example_gen'])}]")
        generator = entry["generator"]
        shown = ", ".join(f"{name} {generator[name]}" for name in
                          ("seed", "records_per_span", "drift_scenarios", "history_start", "period_days")
                          if name in generator and generator[name] != "")
        lines.append(f"          generator: {shown or 'no settings recorded'}")
        statistics = entry.get("statistics")
        validation = entry["validation"]
        anomalies = validation.get("anomalies")
        found = validation.get("anomalies_by_split") or {}
        clean = validation.get("splits_without_anomalies") or {}
        split_state = ", ".join(
            f"{split} " + ("; ".join(f"{feature}: {text}" for feature, text in found[split].items())
                           if found.get(split) else ("clean" if clean.get(split, 1) else "anomalies"))
            for split in sorted(set(clean) | set(found)))
        lines.append(f"          statistics: {'#' + str(statistics['artifact_id']) if statistics else 'none'}; "
                     f"anomalies: {'#' + str(anomalies['artifact_id']) + ' ' + split_state if anomalies else 'none'}; "
                     f"validation gate: {_run(validation.get('gate'))}")
        drift = entry.get("drift")
        if drift:
            against = f" against span {drift['against_span']}" if drift.get("against_span") is not None else ""
            flagged = f" ({drift['drifted_features']})" if drift.get("drifted_features") else ""
            lines.append(f"          drift: {drift['drift_status']}{against}{flagged}, skew: "
                         f"{drift['skew_status']}{', blocked' if drift['blocked'] else ''}; "
                         f"drift gate: {_run(drift.get('gate'))}")
    return lines


def forward_lines(span: int, rows: List[Dict]) -> List[str]:
    if not rows:
        return [f"span {span}: no Model was trained on it"]
    lines = [f"span {span}: trained into {len(rows)} Model(s)"]
    for row in rows:
        pushed = row.get("pushed_as")
        served = f"{pushed['model']} v{pushed['version']}" if pushed else "not pushed"
        lines.append(f"  Model #{row['model_artifact_id']}: {served}, window spans "
                     f"{span_range(row['spans'])}  [{_run(row['trainer'])}]")
    return lines


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def dot_text(lineage: Dict) -> str:
    """Graphviz DOT: artifacts as boxes, executions as ellipses, edges labelled by event key."""
    graph = lineage["graph"]
    lines = [f"digraph {_quote(lineage['model'] + ' v' + str(lineage['version']))} {{",
             "  rankdir=LR;", "  node [fontname=Helvetica, fontsize=10];"]
    for node in graph["nodes"]:
        shape = "box" if node["kind"] == "artifact" else "ellipse"
        style = ", style=filled, fillcolor=\"#fde7c8\"" if node["type"] == "PushedModel" else ""
        lines.append(f"  {node['id']} [label={_quote(node['label'])}, shape={shape}{style}];")
    for edge in graph["edges"]:
        lines.append(f"  {edge['from']} -> {edge['to']} [label={_quote(edge['key'])}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def layers(graph: Dict) -> Dict[str, int]:
    """Each node's column: the longest path from a node without inputs (edges follow data)."""
    incoming: Dict[str, List[str]] = {node["id"]: [] for node in graph["nodes"]}
    for edge in graph["edges"]:
        incoming.setdefault(edge["to"], []).append(edge["from"])
    layer: Dict[str, int] = {}

    def depth(node_id: str, visiting=frozenset()) -> int:
        if node_id in layer:
            return layer[node_id]
        parents = [p for p in incoming.get(node_id, []) if p not in visiting]
        layer[node_id] = 1 + max((depth(p, visiting | {node_id}) for p in parents), default=-1)
        return layer[node_id]

    for node in graph["nodes"]:
        depth(node["id"])
    return layer


NODE_WIDTH, NODE_HEIGHT, COLUMN_GAP, ROW_GAP, MARGIN = 190, 30, 60, 14, 20
COLOURS = {"PushedModel": "#fde7c8", "Model": "#d9ead3", "Examples": "#dbe8fb",
           "ModelBlessing": "#f4d4e4", "InfraBlessing": "#f4d4e4"}


def svg_text(graph: Dict) -> str:
    column = layers(graph)
    by_column: Dict[int, List[Dict]] = {}
    for node in graph["nodes"]:
        by_column.setdefault(column[node["id"]], []).append(node)
    position = {}
    for index, nodes in sorted(by_column.items()):
        for row, node in enumerate(sorted(nodes, key=lambda n: (n["type"], n["id"]))):
            position[node["id"]] = (MARGIN + index * (NODE_WIDTH + COLUMN_GAP),
                                    MARGIN + row * (NODE_HEIGHT + ROW_GAP))
    width = MARGIN * 2 + (max(by_column, default=0) + 1) * (NODE_WIDTH + COLUMN_GAP)
    height = MARGIN * 2 + max((len(n) for n in by_column.values()), default=1) * (NODE_HEIGHT + ROW_GAP)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}">',
             '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" '
             'markerHeight="6" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#888"/></marker></defs>']
    for edge in graph["edges"]:
        if edge["from"] not in position or edge["to"] not in position:
            continue
        (x1, y1), (x2, y2) = position[edge["from"]], position[edge["to"]]
        x1, y1, y2 = x1 + NODE_WIDTH, y1 + NODE_HEIGHT / 2, y2 + NODE_HEIGHT / 2
        middle = (x1 + x2) / 2
        parts.append(f'<path d="M{x1},{y1} C{middle},{y1} {middle},{y2} {x2},{y2}" fill="none" '
                     f'stroke="#999" marker-end="url(#arrow)"><title>{html.escape(edge["key"])}</title></path>')
    for node in graph["nodes"]:
        x, y = position[node["id"]]
        fill = COLOURS.get(node["type"], "#eeeeee" if node["kind"] == "artifact" else "#ffffff")
        radius = 4 if node["kind"] == "artifact" else NODE_HEIGHT / 2
        tip = node["label"] + (f" ({node['state']})" if node.get("state") else "")
        parts.append(f'<g><title>{html.escape(tip)}</title><rect x="{x}" y="{y}" width="{NODE_WIDTH}" '
                     f'height="{NODE_HEIGHT}" rx="{radius}" fill="{fill}" stroke="#555"/>'
                     f'<text x="{x + NODE_WIDTH / 2}" y="{y + NODE_HEIGHT / 2 + 4}" '
                     f'text-anchor="middle">{html.escape(node["label"])}</text></g>')
    parts.append("</svg>")
    return "\n".join(parts)


def html_page(lineage: Dict) -> str:
    """One file: the tree as text beside the drawn graph."""
    title = f"Lineage of {lineage['model']} v{lineage['version']}"
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>"
            "body{font-family:Helvetica,Arial,sans-serif;margin:20px}"
            "pre{background:#f6f6f6;padding:10px;overflow-x:auto;font-size:12px}"
            "svg text{font-size:11px;font-family:Helvetica,Arial,sans-serif}"
            ".graph{overflow:auto;border:1px solid #ddd}</style></head><body>"
            f"<h1>{html.escape(title)}</h1>"
            f"<pre>{html.escape(chr(10).join(tree_lines(lineage)))}</pre>"
            f"<div class=\"graph\">{svg_text(lineage['graph'])}</div></body></html>\n")
