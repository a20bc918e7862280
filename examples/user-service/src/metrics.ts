// A minimal Prometheus registry and text exposition (format 0.0.4), written here to keep the
// image free of runtime dependencies.

export const EXPOSITION_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export type Labels = Record<string, string>;

interface Metric {
  render(): string;
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

export function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

function renderLabels(names: readonly string[], values: readonly string[], extra?: [string, string]): string {
  const pairs = names.map((name, i) => `${name}="${escapeLabelValue(values[i] ?? '')}"`);
  if (extra) {
    pairs.push(`${extra[0]}="${escapeLabelValue(extra[1])}"`);
  }
  return pairs.length === 0 ? '' : `{${pairs.join(',')}}`;
}

function header(name: string, help: string, type: string): string {
  return `# HELP ${name} ${escapeHelp(help)}\n# TYPE ${name} ${type}\n`;
}

abstract class LabelledMetric<T> implements Metric {
  protected readonly series = new Map<string, { values: string[]; data: T }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {
    if (!METRIC_NAME.test(name)) {
      throw new Error(`invalid metric name ${JSON.stringify(name)}`);
    }
    for (const label of labelNames) {
      if (!LABEL_NAME.test(label) || label.startsWith('__') || label === 'le') {
        throw new Error(`invalid label name ${JSON.stringify(label)} for metric ${name}`);
      }
    }
  }

  protected entry(labels: Labels, create: () => T): T {
    const values = this.labelNames.map((label) => {
      const value = labels[label];
      if (value === undefined) {
        throw new Error(`metric ${this.name} needs label ${label}`);
      }
      return value;
    });
    const key = JSON.stringify(values);
    let found = this.series.get(key);
    if (!found) {
      found = { values, data: create() };
      this.series.set(key, found);
    }
    return found.data;
  }

  abstract render(): string;
}

export class Counter extends LabelledMetric<{ value: number }> {
  inc(labels: Labels = {}, amount = 1): void {
    if (amount < 0) {
      throw new Error(`counter ${this.name} cannot decrease`);
    }
    this.entry(labels, () => ({ value: 0 })).value += amount;
  }

  get(labels: Labels = {}): number {
    return this.entry(labels, () => ({ value: 0 })).value;
  }

  render(): string {
    let out = header(this.name, this.help, 'counter');
    for (const { values, data } of this.series.values()) {
      out += `${this.name}${renderLabels(this.labelNames, values)} ${formatValue(data.value)}\n`;
    }
    return out;
  }
}

export class Gauge extends LabelledMetric<{ value: number }> {
  set(labels: Labels, value: number): void {
    this.entry(labels, () => ({ value: 0 })).value = value;
  }

  render(): string {
    let out = header(this.name, this.help, 'gauge');
    for (const { values, data } of this.series.values()) {
      out += `${this.name}${renderLabels(this.labelNames, values)} ${formatValue(data.value)}\n`;
    }
    return out;
  }
}

/** A metric whose single value is read when scraped, e.g. memory or readiness. */
export class SampledMetric implements Metric {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'gauge' | 'counter',
    private readonly sample: () => number,
  ) {
    if (!METRIC_NAME.test(name)) {
      throw new Error(`invalid metric name ${JSON.stringify(name)}`);
    }
  }

  render(): string {
    return `${header(this.name, this.help, this.type)}${this.name} ${formatValue(this.sample())}\n`;
  }
}

interface HistogramData {
  counts: number[];
  sum: number;
  count: number;
}

export class Histogram extends LabelledMetric<HistogramData> {
  readonly buckets: readonly number[];

  constructor(name: string, help: string, labelNames: readonly string[], buckets: readonly number[]) {
    super(name, help, labelNames);
    const sorted = [...buckets].sort((a, b) => a - b);
    if (sorted.length === 0 || sorted.some((b, i) => !Number.isFinite(b) || (i > 0 && b === sorted[i - 1]))) {
      throw new Error(`histogram ${name} needs distinct finite buckets`);
    }
    this.buckets = sorted;
  }

  observe(labels: Labels, value: number): void {
    const data = this.entry(labels, () => ({ counts: this.buckets.map(() => 0), sum: 0, count: 0 }));
    // Counts are stored per bucket and summed on render, which keeps observe() cheap.
    const index = this.buckets.findIndex((bound) => value <= bound);
    if (index >= 0) {
      data.counts[index] = (data.counts[index] ?? 0) + 1;
    }
    data.sum += value;
    data.count += 1;
  }

  render(): string {
    let out = header(this.name, this.help, 'histogram');
    for (const { values, data } of this.series.values()) {
      let cumulative = 0;
      this.buckets.forEach((bound, i) => {
        cumulative += data.counts[i] ?? 0;
        out += `${this.name}_bucket${renderLabels(this.labelNames, values, ['le', formatValue(bound)])} ${cumulative}\n`;
      });
      out += `${this.name}_bucket${renderLabels(this.labelNames, values, ['le', '+Inf'])} ${data.count}\n`;
      out += `${this.name}_sum${renderLabels(this.labelNames, values)} ${formatValue(data.sum)}\n`;
      out += `${this.name}_count${renderLabels(this.labelNames, values)} ${data.count}\n`;
    }
    return out;
  }
}

export class Registry {
  private readonly metrics: Metric[] = [];
  private readonly names = new Set<string>();

  register<M extends Metric & { name: string }>(metric: M): M {
    if (this.names.has(metric.name)) {
      throw new Error(`metric ${metric.name} registered twice`);
    }
    this.names.add(metric.name);
    this.metrics.push(metric);
    return metric;
  }

  expose(): string {
    return this.metrics.map((metric) => metric.render()).join('');
  }
}
