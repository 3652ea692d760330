/**
 * Learning where the logs live: the aggregation `twinwall learn` makes of VPC Flow Logs, written
 * as a query for Amazon Athena (Trino SQL, over the table AWS documents for flow logs) or for
 * CloudWatch Logs Insights, and the reader of the query's result (CSV) as learn's input. This
 * module owns the result's columns: it writes them (both queries) and reads them.
 *
 * One row per (instance, interface, flow-direction, source, destination, forged source, protocol,
 * service port, who opened it, action), with the count of records, the packets and bytes, and the
 * first and last start. Who opened a TCP/UDP record and which port is the service port are
 * decided in the query by the same rule learn applies to a record (serverSide: flags, catalog
 * ports, well-known ports, the lower port), built from one expression tree that both queries
 * print: SQL with CASE, Logs Insights (which has no conditional) with the same tests lowered to
 * arithmetic on 0/1 values. Everything else — the host's own address, ICMP's opener, the
 * aggregation into flows and the proposal — is learn's, on the rows, exactly as on the records.
 *
 * Nothing from a flag reaches the query text as the user typed it: a table name is checked to be
 * identifiers and quoted, a CIDR is parsed and written back in its canonical form, a time is
 * parsed and written as epoch seconds and a date.
 */
import { Cidr } from '../address';
import { SERVICES } from '../catalog';
import { TwinwallError, show } from '../errors';
import { ByteInterner, digits, utf8 } from './bytes';
import { EGRESS, FLOW_LOG_V2_FIELDS, FlowLogReader, INGRESS, NO_DIRECTION, parseFlowLogFormat } from './flow-log';
import { Addr, AddressReader, LINE, LineKind, LineReader, LineRecord } from './observation';
import { protocolName } from '../port';

// ---- the expression tree --------------------------------------------------------------------

/** An expression over one flow-log record. Booleans are `cmp`, `and`, `or`, `not`, `in`. */
export type Expr =
  | { readonly k: 'num'; readonly v: number }
  | { readonly k: 'str'; readonly v: string }
  /** A flow-log field, by its flow-log name ("srcport"). */
  | { readonly k: 'field'; readonly name: string }
  /** A value computed in an earlier step ("tw_tcp"). */
  | { readonly k: 'ref'; readonly name: string }
  | { readonly k: 'arith'; readonly op: '+' | '-' | '*'; readonly a: Expr; readonly b: Expr }
  | { readonly k: 'fn'; readonly fn: 'least' | 'greatest' | 'abs' | 'coalesce' | 'strlen' | 'replace' | 'concat'; readonly args: readonly Expr[] }
  | { readonly k: 'cmp'; readonly op: '=' | '<' | '<=' | '<>'; readonly a: Expr; readonly b: Expr; readonly text?: boolean }
  | { readonly k: 'and' | 'or'; readonly a: Expr; readonly b: Expr }
  | { readonly k: 'not'; readonly a: Expr }
  | { readonly k: 'in'; readonly a: Expr; readonly set: readonly number[] }
  | { readonly k: 'if'; readonly c: Expr; readonly a: Expr; readonly b: Expr };

const num = (v: number): Expr => ({ k: 'num', v });
const str = (v: string): Expr => ({ k: 'str', v });
const field = (name: string): Expr => ({ k: 'field', name });
const ref = (name: string): Expr => ({ k: 'ref', name });
const eq = (a: Expr, b: Expr, text = false): Expr => ({ k: 'cmp', op: '=', a, b, text });
const ne = (a: Expr, b: Expr, text = false): Expr => ({ k: 'cmp', op: '<>', a, b, text });
const lt = (a: Expr, b: Expr): Expr => ({ k: 'cmp', op: '<', a, b });
const le = (a: Expr, b: Expr): Expr => ({ k: 'cmp', op: '<=', a, b });
const and = (a: Expr, b: Expr): Expr => ({ k: 'and', a, b });
const or = (a: Expr, b: Expr): Expr => ({ k: 'or', a, b });
const not = (a: Expr): Expr => ({ k: 'not', a });
const inSet = (a: Expr, set: readonly number[]): Expr => ({ k: 'in', a, set });
const iff = (c: Expr, a: Expr, b: Expr): Expr => ({ k: 'if', c, a, b });
const fn = (f: Extract<Expr, { k: 'fn' }>['fn'], ...args: Expr[]): Expr => ({ k: 'fn', fn: f, args });

/** Catalog ports per protocol (the same table serverSide reads). */
function catalogPorts(protocol: 'tcp' | 'udp'): number[] {
  const out = new Set<number>();
  for (const row of Object.values(SERVICES)) for (const p of row.ports) if (p.protocol === protocol && p.from === p.to) out.add(p.from as number);
  return [...out].sort((a, b) => a - b);
}

/** A computed value: its name and expression (over fields and earlier steps). */
export interface Step {
  readonly name: string;
  readonly expr: Expr;
}

/**
 * The result's computed columns for a record format holding `has` fields, as layers of steps (a
 * step uses fields and the steps of earlier layers): `opener` is serverSide as a code (0 the
 * destination serves, 1 the source serves, +2 when guessed; 0 for protocols without ports),
 * `spoof` is 1 for an egress record whose pkt-srcaddr is another address, `port` is the
 * service port (the destination port of a forged record; 0 without ports).
 */
export function resultSteps(has: (name: string) => boolean): Step[][] {
  const value = (name: string, otherwise: Expr): Expr => (has(name) ? fn('coalesce', field(name), otherwise) : otherwise);
  const bit = (c: Expr): Expr => iff(c, num(1), num(0));
  const yes = (name: string): Expr => eq(ref(name), num(1));
  const known = (port: string): Expr => or(and(yes('tw_tcp'), inSet(ref(port), catalogPorts('tcp'))), and(yes('tw_udp'), inSet(ref(port), catalogPorts('udp'))));
  const spoof = has('flow-direction') && has('pkt-srcaddr') ? and(and(eq(value('flow-direction', str('-')), str('egress'), true), ne(value('pkt-srcaddr', str('-')), str('-'), true)), ne(value('pkt-srcaddr', str('-')), value('srcaddr', str('-')), true)) : eq(num(0), num(1));
  const dport = ref('tw_dport');
  const sport = ref('tw_sport');
  const noPorts = and(eq(ref('tw_tcp'), num(0)), eq(ref('tw_udp'), num(0)));
  const code = iff(
    noPorts,
    num(0),
    iff(
      and(yes('tw_tcp'), eq(ref('tw_flags'), num(2))),
      num(0),
      iff(
        and(yes('tw_tcp'), eq(ref('tw_flags'), num(18))),
        num(1),
        iff(
          and(yes('tw_dk'), not(yes('tw_sk'))),
          num(0),
          iff(and(yes('tw_sk'), not(yes('tw_dk'))), num(1), iff(and(lt(dport, num(1024)), le(num(1024), sport)), num(0), iff(and(lt(sport, num(1024)), le(num(1024), dport)), num(1), iff(le(dport, sport), num(2), num(3))))),
        ),
      ),
    ),
  );
  return [
    [
      { name: 'tw_proto', expr: value('protocol', num(-1)) },
      { name: 'tw_sport', expr: value('srcport', num(-1)) },
      { name: 'tw_dport', expr: value('dstport', num(-1)) },
      { name: 'tw_flags', expr: value('tcp-flags', num(-1)) },
      { name: 'spoof', expr: bit(spoof) },
    ],
    [
      { name: 'tw_tcp', expr: bit(eq(ref('tw_proto'), num(6))) },
      { name: 'tw_udp', expr: bit(eq(ref('tw_proto'), num(17))) },
    ],
    [
      { name: 'tw_dk', expr: bit(known('tw_dport')) },
      { name: 'tw_sk', expr: bit(known('tw_sport')) },
    ],
    [{ name: 'opener', expr: code }],
    [{ name: 'port', expr: iff(yes('spoof'), dport, iff(noPorts, num(0), iff(inSet(ref('opener'), [0, 2]), dport, sport))) }],
  ];
}

/**
 * The same expression with every boolean as a 0/1 number and every condition as arithmetic (for
 * Logs Insights, which has no CASE): a = b → 1 − least(1, |a − b|); a < b → least(1, greatest(0,
 * b − a)); and → ×; or → least(1, +); not → 1 − x; if(c, a, b) → c·a + (1 − c)·b. Text equality
 * uses that replacing one string in the other leaves nothing only when they are equal (both
 * prefixed, so neither is empty). Exact for the integers and strings of a flow-log record.
 */
export function lower(e: Expr): Expr {
  const one = num(1);
  const sub = (a: Expr, b: Expr): Expr => ({ k: 'arith', op: '-', a, b });
  const add = (a: Expr, b: Expr): Expr => ({ k: 'arith', op: '+', a, b });
  const mul = (a: Expr, b: Expr): Expr => ({ k: 'arith', op: '*', a, b });
  const eqNum = (a: Expr, b: Expr): Expr => sub(one, fn('least', one, fn('abs', sub(a, b))));
  switch (e.k) {
    case 'num':
    case 'str':
    case 'field':
    case 'ref':
      return e;
    case 'arith':
      return { k: 'arith', op: e.op, a: lower(e.a), b: lower(e.b) };
    case 'fn':
      return { k: 'fn', fn: e.fn, args: e.args.map(lower) };
    case 'cmp': {
      const a = lower(e.a);
      const b = lower(e.b);
      if (e.text) {
        const x = fn('concat', str('x'), a);
        const y = fn('concat', str('x'), b);
        const same = sub(one, fn('least', one, add(fn('strlen', fn('replace', x, y, str(''))), fn('strlen', fn('replace', y, x, str(''))))));
        return e.op === '=' ? same : sub(one, same);
      }
      if (e.op === '=') return eqNum(a, b);
      if (e.op === '<>') return sub(one, eqNum(a, b));
      if (e.op === '<') return fn('least', one, fn('greatest', num(0), sub(b, a)));
      return fn('least', one, fn('greatest', num(0), add(sub(b, a), one)));
    }
    case 'and':
      return mul(lower(e.a), lower(e.b));
    case 'or':
      return fn('least', one, add(lower(e.a), lower(e.b)));
    case 'not':
      return sub(one, lower(e.a));
    case 'in': {
      const a = lower(e.a);
      return fn('least', one, e.set.map((v) => eqNum(a, num(v))).reduce((x, y) => add(x, y)));
    }
    case 'if': {
      const c = lower(e.c);
      return add(mul(c, lower(e.a)), mul(sub(one, c), lower(e.b)));
    }
  }
}

/** A field's column: the flow-log name with "-" as "_" (the names AWS's table for flow logs uses). */
export function columnName(flowLogField: string): string {
  return flowLogField.replace(/-/g, '_');
}

/** SQL (Trino, and DuckDB for the tests): booleans as conditions, `if` as CASE. */
export function printSql(e: Expr, column: (name: string) => string = (n) => quoteIdentifier(columnName(n))): string {
  const p = (x: Expr): string => printSql(x, column);
  switch (e.k) {
    case 'num':
      return String(e.v);
    case 'str':
      return sqlString(e.v);
    case 'field':
      return column(e.name);
    case 'ref':
      return quoteIdentifier(e.name);
    case 'arith':
      return `(${p(e.a)} ${e.op} ${p(e.b)})`;
    case 'fn':
      return `${e.fn === 'strlen' ? 'length' : e.fn}(${e.args.map(p).join(', ')})`;
    case 'cmp':
      return `(${p(e.a)} ${e.op} ${p(e.b)})`;
    case 'and':
    case 'or':
      return `(${p(e.a)} ${e.k.toUpperCase()} ${p(e.b)})`;
    case 'not':
      return `(NOT ${p(e.a)})`;
    case 'in':
      return `(${p(e.a)} IN (${e.set.join(', ')}))`;
    case 'if': {
      // if(c1, a, if(c2, b, …)) as one CASE with a WHEN per condition.
      const whens: string[] = [];
      let x: Expr = e;
      while (x.k === 'if') {
        whens.push(`WHEN ${p(x.c)} THEN ${p(x.a)}`);
        x = x.b;
      }
      return `CASE ${whens.join(' ')} ELSE ${p(x)} END`;
    }
  }
}

/** Logs Insights: arithmetic only (lower() first). */
function printInsights(e: Expr): string {
  switch (e.k) {
    case 'num':
      return String(e.v);
    case 'str':
      return insightsString(e.v);
    case 'field':
      return insightsField(e.name);
    case 'ref':
      return e.name;
    case 'arith':
      return `(${printInsights(e.a)} ${e.op} ${printInsights(e.b)})`;
    case 'fn':
      return `${e.fn}(${e.args.map(printInsights).join(', ')})`;
    default:
      throw new Error(`not lowered: ${e.k}`);
  }
}

// ---- quoting and validation -----------------------------------------------------------------

/** A SQL string literal (our own constants and canonical CIDRs only: no user text). */
function sqlString(v: string): string {
  return `'${v.replace(/'/g, "''")}'`;
}

/** A Logs Insights string literal (our own constants and canonical CIDRs only). */
function insightsString(v: string): string {
  return `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

function insightsField(flowLogField: string): string {
  return columnName(flowLogField) === 'end' ? 'end_' : columnName(flowLogField);
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

/**
 * A table name for the query: one to three identifiers separated by dots (catalog.database.table),
 * each letters, digits and underscores. Anything else is refused, so the name cannot carry SQL.
 */
export function tableName(text: string): string {
  const parts = text.split('.');
  if (parts.length > 3 || !parts.every((p) => IDENTIFIER.test(p))) {
    throw new TwinwallError('QUERY_OPTION_INVALID', {
      value: text,
      problem: `the table name ${show(text)} is not one to three identifiers (letters, digits, underscores) separated by dots.`,
      fix: 'name the Athena table as it was created, e.g. "vpc_flow_logs" or "flowlogs_db.vpc_flow_logs".',
    });
  }
  return parts.map(quoteIdentifier).join('.');
}

/**
 * A time for --since/--until: a date (YYYY-MM-DD, midnight UTC) or an ISO 8601 date and time with
 * Z or an offset. Returns epoch seconds. Refused otherwise (never passed on as text).
 */
export function queryTime(text: string, flag: string): number {
  const date = /^\d{4}-\d\d-\d\d$/.test(text);
  const dateTime = /^\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d(?:\.\d{1,9})?)?(?:Z|[+-]\d\d:\d\d)$/.test(text);
  const ms = date ? Date.parse(`${text}T00:00:00Z`) : dateTime ? Date.parse(text) : NaN;
  if (!Number.isFinite(ms) || (date && new Date(ms).toISOString().slice(0, 10) !== text)) {
    throw new TwinwallError('QUERY_OPTION_INVALID', {
      value: text,
      problem: `${flag} ${show(text)} is not a date (2024-11-19) or a date and time with a zone (2024-11-19T22:00:00Z).`,
      fix: `give ${flag} as YYYY-MM-DD (midnight UTC) or YYYY-MM-DDThh:mm[:ss]Z / ±hh:mm.`,
    });
  }
  return Math.floor(ms / 1000);
}

export interface QueryOptions {
  /** Athena: the table (validated; default "vpc_flow_logs"). */
  readonly table?: string;
  /** Records starting at or after this (epoch seconds, from queryTime). */
  readonly since?: number;
  /** Records starting before this (epoch seconds). */
  readonly until?: number;
  /** Only records to or from these blocks. */
  readonly cidrs?: readonly Cidr[];
  /** Logs Insights: the flow-log format of the log group (default version 2). */
  readonly format?: string;
}

/** The columns of the query's result, in order (the CSV learn reads). */
export const RESULT_COLUMNS = ['instance_id', 'interface_id', 'flow_direction', 'srcaddr', 'dstaddr', 'pkt_srcaddr', 'protocol', 'port', 'opener', 'spoof', 'action', 'records', 'packets', 'bytes', 'first_start', 'last_start'] as const;

/** The columns of AWS's documented Athena table for flow logs (versions 2 to 5). */
const ATHENA_COLUMNS = new Set(['version', 'account_id', 'interface_id', 'srcaddr', 'dstaddr', 'srcport', 'dstport', 'protocol', 'packets', 'bytes', 'start', 'end', 'action', 'log_status', 'vpc_id', 'subnet_id', 'instance_id', 'tcp_flags', 'type', 'pkt_srcaddr', 'pkt_dstaddr', 'region', 'az_id', 'sublocation_type', 'sublocation_id', 'pkt_src_aws_service', 'pkt_dst_aws_service', 'flow_direction', 'traffic_path']);

function header(kind: string, options: QueryOptions, comment: string): string[] {
  const lines = [
    `twinwall learn: ${kind} over VPC Flow Logs. Save the result as CSV and read it with`,
    '  twinwall learn --from-query-result RESULT.csv',
    'One row per host, direction, addresses, protocol, service port, opener and action; learn does the rest.',
  ];
  if (options.since !== undefined || options.until !== undefined) lines.push(`Records starting ${options.since !== undefined ? `at or after ${new Date(options.since * 1000).toISOString()}` : ''}${options.since !== undefined && options.until !== undefined ? ' and ' : ''}${options.until !== undefined ? `before ${new Date(options.until * 1000).toISOString()}` : ''}.`);
  if (options.cidrs?.length) lines.push(`Only records to or from ${options.cidrs.map((c) => c.text).join(', ')}.`);
  return lines.map((l) => `${comment} ${l}`.trimEnd());
}

/**
 * The Athena (Trino) query over AWS's documented table for flow logs (`CREATE EXTERNAL TABLE
 * vpc_flow_logs (version int, account_id string, … flow_direction string, traffic_path int)
 * PARTITIONED BY (date date)`; columns of fields a log does not carry are empty).
 */
export function athenaQuery(options: QueryOptions = {}): string {
  const table = tableName(options.table ?? 'vpc_flow_logs');
  const col = (name: string): string => quoteIdentifier(name);
  const where = [`${col('log_status')} = 'OK'`];
  if (options.since !== undefined) where.push(`${col('start')} >= ${options.since}`, `${col('date')} >= DATE '${new Date(options.since * 1000).toISOString().slice(0, 10)}'`);
  if (options.until !== undefined) where.push(`${col('start')} < ${options.until}`, `${col('date')} <= DATE '${new Date(options.until * 1000).toISOString().slice(0, 10)}'`);
  if (options.cidrs?.length) {
    const any = options.cidrs.flatMap((c) => ['srcaddr', 'dstaddr'].map((a) => `contains(${sqlString(c.text)}, TRY_CAST(${col(a)} AS IPADDRESS))`));
    where.push(`(${any.join(' OR ')})`);
  }
  // The records, then one step after another: each selects everything before it and adds its values.
  const layers = resultSteps((name) => ATHENA_COLUMNS.has(columnName(name)));
  const ctes = [`${col('tw_0')} AS (\n  SELECT * FROM ${table}\n  WHERE ${where.join('\n    AND ')}\n)`];
  layers.forEach((layer, i) => {
    ctes.push(`${col(`tw_${i + 1}`)} AS (\n  SELECT *,\n${layer.map((st) => `    ${printSql(st.expr)} AS ${col(st.name)}`).join(',\n')}\n  FROM ${col(`tw_${i}`)}\n)`);
  });
  const from = col(`tw_${layers.length}`);
  const keys: [string, string][] = [
    ['instance_id', col('instance_id')],
    ['interface_id', col('interface_id')],
    ['flow_direction', col('flow_direction')],
    ['srcaddr', col('srcaddr')],
    ['dstaddr', col('dstaddr')],
    ['pkt_srcaddr', `CASE WHEN ${col('spoof')} = 1 THEN ${col('pkt_srcaddr')} END`],
    ['protocol', col('protocol')],
    ['port', col('port')],
    ['opener', col('opener')],
    ['spoof', col('spoof')],
    ['action', col('action')],
  ];
  const sums: [string, string][] = [
    ['records', 'COUNT(*)'],
    ['packets', `SUM(${col('packets')})`],
    ['bytes', `SUM(${col('bytes')})`],
    ['first_start', `MIN(${col('start')})`],
    ['last_start', `MAX(${col('start')})`],
  ];
  return [
    ...header('an Athena (Trino SQL) query', options, '--'),
    `WITH ${ctes.join(',\n')}`,
    'SELECT',
    [...keys, ...sums].map(([name, expr]) => `  ${expr} AS ${col(name)}`).join(',\n'),
    `FROM ${from}`,
    `GROUP BY ${keys.map((_, i) => i + 1).join(', ')}`,
    `ORDER BY ${col('first_start')}, ${keys.map(([name]) => col(name)).join(', ')}`,
    '',
  ].join('\n');
}

/**
 * The CloudWatch Logs Insights query for a log group of flow logs in `options.format` (default
 * version 2). Logs Insights returns at most 10,000 rows: narrow the time range (chosen in the
 * console or API) or the blocks until the result has fewer.
 */
export function logsInsightsQuery(options: QueryOptions = {}): string {
  const fields = options.format !== undefined ? parseFlowLogFormat(options.format) : [...FLOW_LOG_V2_FIELDS];
  const has = (name: string): boolean => fields.includes(name);
  const filters = has('log-status') ? [`${insightsField('log-status')} = "OK"`] : [];
  if (options.since !== undefined) filters.push(`${insightsField('start')} >= ${options.since}`);
  if (options.until !== undefined) filters.push(`${insightsField('start')} < ${options.until}`);
  if (options.cidrs?.length) filters.push(`(${options.cidrs.flatMap((c) => ['srcaddr', 'dstaddr'].map((a) => `isIpInSubnet(${insightsField(a)}, ${insightsString(c.text)})`)).join(' or ')})`);
  const by = ['instance-id', 'interface-id', 'flow-direction', 'srcaddr', 'dstaddr', 'pkt-srcaddr', 'protocol'].filter(has).map(insightsField);
  const sums = ['packets', 'bytes', 'start'].filter(has).map(insightsField);
  // Each `fields` step names what later steps and the stats need, so nothing is lost between them.
  const carried = [...new Set([...by, ...sums, ...(has('action') ? [insightsField('action')] : [])])];
  const steps = resultSteps(has);
  const made: string[] = [];
  const lines = steps.map((layer) => {
    const text = `| fields ${[...carried, ...made].join(', ')}${carried.length + made.length > 0 ? ', ' : ''}${layer.map((st) => `${printInsights(lower(st.expr))} as ${st.name}`).join(', ')}`;
    made.push(...layer.map((st) => st.name));
    return text;
  });
  const stats = [
    'count(*) as records',
    ...(has('packets') ? [`sum(${insightsField('packets')}) as packets`] : []),
    ...(has('bytes') ? [`sum(${insightsField('bytes')}) as bytes`] : []),
    ...(has('start') ? [`min(${insightsField('start')}) as first_start`, `max(${insightsField('start')}) as last_start`] : []),
  ];
  return [
    ...header('a CloudWatch Logs Insights query', options, '#'),
    '# Logs Insights returns at most 10,000 rows: narrow the time range or the blocks until there are fewer.',
    `parse @message ${insightsString(fields.map(() => '*').join(' '))} as ${fields.map(insightsField).join(', ')}`,
    ...filters.map((f) => `| filter ${f}`),
    ...lines,
    `| stats ${stats.join(', ')} by ${[...by, 'port', 'opener', 'spoof', ...(has('action') ? [insightsField('action')] : [])].join(', ')}`,
    ...(has('start') ? ['| sort first_start asc'] : []),
    '| limit 10000',
    '',
  ].join('\n');
}

// ---- reading the result ---------------------------------------------------------------------

/** Fields of one CSV line as the query engines write them (RFC 4180 quoting within the line). */
function csvFields(buf: Uint8Array, start: number, end: number, out: { s: number[]; e: number[]; quoted: boolean[] }): boolean {
  out.s.length = 0;
  out.e.length = 0;
  out.quoted.length = 0;
  let i = start;
  for (;;) {
    if (i < end && buf[i] === 34) {
      // "…", with "" for a quote inside.
      const s = ++i;
      for (;;) {
        if (i >= end) return false;
        if (buf[i] === 34) {
          if (i + 1 < end && buf[i + 1] === 34) i += 2;
          else break;
        } else i++;
      }
      out.s.push(s);
      out.e.push(i);
      out.quoted.push(true);
      i++;
      if (i < end && buf[i] !== 44) return false;
    } else {
      const s = i;
      while (i < end && buf[i] !== 44) {
        if (buf[i] === 34) return false;
        i++;
      }
      out.s.push(s);
      out.e.push(i);
      out.quoted.push(false);
    }
    if (i >= end) return true;
    i++; // the comma
    if (out.s.length > 64) return false;
  }
}

/** A field's text, quotes undone. */
function fieldText(buf: Uint8Array, s: number, e: number, quoted: boolean): string {
  const t = utf8(buf, s, e);
  return quoted ? t.replace(/""/g, '"') : t;
}

/**
 * Reads the CSV a query above returned (Athena's download, DuckDB's COPY, the Logs Insights
 * export): a header naming the columns (any order, any case), then one row per line. Each row
 * becomes one record standing for `records` flow-log records, placed by the flow-log reader's own
 * rules (flow-direction, declared blocks, inference; a forged source only where both the query and
 * learn see one).
 */
export class QueryResultReader implements LineReader {
  public why = '';
  private columns: Map<string, number> | undefined;
  private readonly f = { s: [] as number[], e: [] as number[], quoted: [] as boolean[] };
  private readonly names = new ByteInterner<string>((b, s, e) => utf8(b, s, e), 65536);
  private readonly pkt = new Addr();

  public constructor(
    private readonly flows: FlowLogReader,
    private readonly options: { readonly source: string; readonly defaultHost: string; readonly forceHost?: string; readonly addresses: AddressReader },
  ) {}

  private bad(why: string): LineKind {
    this.why = why;
    return LINE.malformed;
  }

  private col(name: string): number {
    return this.columns?.get(name) ?? -1;
  }

  /** A column's digits (a trailing ".0" allowed, as some engines print sums): -1 when empty or not a number. */
  private number(buf: Uint8Array, c: number): number {
    if (c < 0 || c >= this.f.s.length) return -1;
    let e = this.f.e[c];
    const s = this.f.s[c];
    let dot = e;
    for (let i = s; i < e; i++) if (buf[i] === 46) dot = i;
    if (dot < e) {
      for (let i = dot + 1; i < e; i++) if (buf[i] !== 48) return -1;
      e = dot;
    }
    return digits(buf, s, e);
  }

  private empty(c: number): boolean {
    return c < 0 || c >= this.f.s.length || this.f.e[c] === this.f.s[c];
  }

  private text(buf: Uint8Array, c: number): string {
    return c < 0 || c >= this.f.s.length ? '' : fieldText(buf, this.f.s[c], this.f.e[c], this.f.quoted[c]);
  }

  public read(buf: Uint8Array, start: number, end: number, line: number, rec: LineRecord): LineKind {
    rec.at(buf, start, end, line);
    rec.moment.source = this.options.source;
    rec.until.source = this.options.source;
    rec.until.line = line;
    if (start === end) {
      this.why = 'blank line';
      return LINE.foreign;
    }
    if (!csvFields(buf, start, end, this.f)) return this.bad('not a CSV row (unbalanced quotes, or more than 64 fields)');
    if (this.columns === undefined) {
      const names = this.f.s.map((s, i) => fieldText(buf, s, this.f.e[i], this.f.quoted[i]).trim().toLowerCase());
      const missing = RESULT_COLUMNS.filter((c) => !['instance_id', 'interface_id', 'flow_direction', 'pkt_srcaddr', 'packets', 'bytes', 'first_start', 'last_start', 'action'].includes(c) && !names.includes(c));
      if (missing.length > 0) return this.bad(`the header ${JSON.stringify(names.join(','))} lacks ${missing.join(', ')}: this is not the result of a query twinwall learn --query wrote`);
      this.columns = new Map(names.map((n, i) => [n, i]));
      this.why = 'header line';
      return LINE.skipped;
    }
    if (this.f.s.length !== this.columns.size) return this.bad(`${this.f.s.length} fields where the header has ${this.columns.size}`);
    const f = this.f;
    const addresses = this.options.addresses;
    const at = (name: string): [number, number] => {
      const c = this.col(name);
      return c < 0 ? [0, 0] : [f.s[c], f.e[c]];
    };
    const [ss, se] = at('srcaddr');
    const [ds, de] = at('dstaddr');
    if (!addresses.readInto(buf, ss, se, rec.src) || !addresses.readInto(buf, ds, de, rec.dst)) return this.bad('srcaddr/dstaddr is not an address');
    if (rec.src.family !== rec.dst.family) return this.bad('srcaddr and dstaddr are of different families');
    const protocol = this.number(buf, this.col('protocol'));
    if (protocol < 0 || protocol > 255) return this.bad(`protocol ${JSON.stringify(this.text(buf, this.col('protocol')))} is not an IP protocol number`);
    const port = this.number(buf, this.col('port'));
    const opener = this.number(buf, this.col('opener'));
    const spoof = this.number(buf, this.col('spoof'));
    if (port < 0 || port > 65535) return this.bad(`port ${JSON.stringify(this.text(buf, this.col('port')))} is not a port`);
    if (opener < 0 || opener > 3 || (spoof !== 0 && spoof !== 1)) return this.bad('opener/spoof is not a code the query writes');
    const records = this.number(buf, this.col('records'));
    if (records < 1) return this.bad(`records ${JSON.stringify(this.text(buf, this.col('records')))} is not a count`);
    const packets = this.number(buf, this.col('packets'));
    const first = this.number(buf, this.col('first_start'));
    const last = this.number(buf, this.col('last_start'));
    if (first > 8.64e12 || last > 8.64e12) return this.bad('first_start/last_start is not a time');

    const idOf = (name: string): string | undefined => {
      const c = this.col(name);
      if (this.empty(c) || (f.e[c] - f.s[c] === 1 && buf[f.s[c]] === 45)) return undefined;
      return this.names.get(buf, f.s[c], f.e[c]);
    };
    rec.kind = 'flow';
    rec.host = this.options.forceHost ?? idOf('instance_id') ?? idOf('interface_id') ?? this.options.defaultHost;
    rec.protocol = protocolName(protocol) ?? protocol;
    rec.protoText = '';
    rec.sport = port;
    rec.dport = port;
    rec.code = opener;
    rec.flags = -1;
    rec.weight = records;
    rec.packets = packets < 0 ? 0 : packets;
    rec.bytes = this.number(buf, this.col('bytes'));
    rec.verdict = idOf('action') ?? 'ACCEPT';
    rec.uid = -1;
    rec.icmpType = -1;
    rec.icmpCode = -1;
    if (first >= 0) rec.moment.setIso(first * 1000);
    else rec.moment.clear();
    if (last >= 0) rec.until.setIso(last * 1000);
    else rec.until.clear();
    rec.ranged = true;

    const dc = this.col('flow_direction');
    const direction = this.empty(dc) ? NO_DIRECTION : this.text(buf, dc) === 'egress' ? EGRESS : this.text(buf, dc) === 'ingress' ? INGRESS : NO_DIRECTION;
    let pkt: Addr | undefined;
    if (spoof === 1) {
      const [ps, pe] = at('pkt_srcaddr');
      if (direction !== EGRESS || !addresses.readInto(buf, ps, pe, this.pkt) || this.pkt.equals(rec.src)) return this.bad('the query took this row for a forged source, but its flow-direction and pkt-srcaddr do not say so');
      pkt = this.pkt;
    }
    const kind = this.flows.place(rec, direction, pkt);
    if (kind === LINE.malformed) this.why = this.flows.why;
    return kind;
  }
}
