/**
 * Learning where the logs live: the Athena query `learn --query athena` prints, run in DuckDB over
 * the synthetic flow logs the other learn tests read (the fixtures and bench/learn-logs.ts), loaded
 * into a table with the columns AWS documents for flow logs the way Athena's text SerDe loads them.
 * The proposal learn makes from the query's CSV result must equal the one it makes from the raw
 * records (evidence line references aside: they point into the CSV). The Logs Insights query has
 * no conditionals: its arithmetic form of the same expressions is checked against the SQL form in
 * DuckDB, and both against learn's own rule (serverSide) on every port class. Needs only the npm
 * package @duckdb/node-api.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import fc from 'fast-check';
import { FLOW_LOG_FIELDS, athenaQuery, columnName, lower, printSql, resultSteps, serverSide, tableName } from '../lib/learn';
import { writeFlowLogs } from '../bench/learn-logs';
import { learnCli } from './support/learn-cli';

const FIXTURES = path.join(__dirname, 'fixtures', 'learn');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twinwall-learn-query-'));
jest.setTimeout(120000);

/** AWS's documented Athena table for flow logs (versions 2 to 5), partitioned by date. */
const TABLE_COLUMNS: [string, 'INTEGER' | 'BIGINT' | 'VARCHAR'][] = [
  ['version', 'INTEGER'],
  ['account_id', 'VARCHAR'],
  ['interface_id', 'VARCHAR'],
  ['srcaddr', 'VARCHAR'],
  ['dstaddr', 'VARCHAR'],
  ['srcport', 'INTEGER'],
  ['dstport', 'INTEGER'],
  ['protocol', 'BIGINT'],
  ['packets', 'BIGINT'],
  ['bytes', 'BIGINT'],
  ['start', 'BIGINT'],
  ['end', 'BIGINT'],
  ['action', 'VARCHAR'],
  ['log_status', 'VARCHAR'],
  ['vpc_id', 'VARCHAR'],
  ['subnet_id', 'VARCHAR'],
  ['instance_id', 'VARCHAR'],
  ['tcp_flags', 'INTEGER'],
  ['type', 'VARCHAR'],
  ['pkt_srcaddr', 'VARCHAR'],
  ['pkt_dstaddr', 'VARCHAR'],
  ['region', 'VARCHAR'],
  ['az_id', 'VARCHAR'],
  ['sublocation_type', 'VARCHAR'],
  ['sublocation_id', 'VARCHAR'],
  ['pkt_src_aws_service', 'VARCHAR'],
  ['pkt_dst_aws_service', 'VARCHAR'],
  ['flow_direction', 'VARCHAR'],
  ['traffic_path', 'INTEGER'],
];

let db: DuckDBInstance;
let sql: DuckDBConnection;
let tables = 0;

beforeAll(async () => {
  db = await DuckDBInstance.create(':memory:');
  sql = await db.connect();
  // Trino's IPADDRESS type and contains(cidr, address), for IPv4, so the query's filters run here too.
  await sql.run('CREATE TYPE IPADDRESS AS VARCHAR');
  await sql.run(`CREATE MACRO tw_ip4(a) AS (TRY_CAST(split_part(a, '.', 1) AS BIGINT) * 16777216 + TRY_CAST(split_part(a, '.', 2) AS BIGINT) * 65536 + TRY_CAST(split_part(a, '.', 3) AS BIGINT) * 256 + TRY_CAST(split_part(a, '.', 4) AS BIGINT))`);
  await sql.run(`CREATE MACRO tw_contains(net, a) AS (floor(tw_ip4(a) / pow(2, 32 - CAST(split_part(net, '/', 2) AS INTEGER))) = floor(tw_ip4(split_part(net, '/', 1)) / pow(2, 32 - CAST(split_part(net, '/', 2) AS INTEGER))))`);
});

afterAll(() => {
  sql?.closeSync();
  fs.rmSync(dir, { recursive: true, force: true });
});

/**
 * A flow-log file loaded as Athena's LazySimpleSerDe loads it: the first line (the header) skipped,
 * fields split at single spaces and matched to columns by the header's names, a value that is not
 * a number in a number column NULL, missing fields NULL, extra fields dropped; `date` from start.
 */
async function load(file: string): Promise<string> {
  const name = `flow_logs_${++tables}`;
  await sql.run(`CREATE TABLE ${name} (${TABLE_COLUMNS.map(([c, t]) => `"${c}" ${t}`).join(', ')})`);
  const [header, ...lines] = fs.readFileSync(file, 'utf8').split('\n');
  const fields = header.split(' ').map(columnName);
  const appender = await sql.createAppender(name);
  for (const line of lines) {
    if (line === '') continue;
    const values = line.split(' ');
    for (const [c, type] of TABLE_COLUMNS) {
      const i = fields.indexOf(c);
      const v = i < 0 ? undefined : values[i];
      if (v === undefined) appender.appendNull();
      else if (type === 'VARCHAR') appender.appendVarchar(v);
      else if (!/^-?\d+$/.test(v) || (type === 'INTEGER' && Math.abs(Number(v)) > 2147483647)) appender.appendNull();
      else if (type === 'INTEGER') appender.appendInteger(Number(v));
      else appender.appendBigInt(BigInt(v));
    }
    appender.endRow();
  }
  appender.closeSync();
  await sql.run(`ALTER TABLE ${name} ADD COLUMN "date" DATE`);
  await sql.run(`UPDATE ${name} SET "date" = CAST(to_timestamp("start") AS DATE)`);
  return name;
}

/** Run a query the way Athena would, its result saved as CSV (every value quoted, as Athena writes it, or only where needed). */
async function runToCsv(query: string, quoteAll: boolean): Promise<string> {
  const out = path.join(dir, `result-${++tables}.csv`);
  const body = query.replace(/contains\(/g, 'tw_contains(');
  await sql.run(`COPY (${body}) TO '${out}' (HEADER, DELIMITER ','${quoteAll ? ', FORCE_QUOTE *' : ''})`);
  return out;
}

interface Doc {
  hosts: { flows: { evidence: Record<string, unknown> }[] }[];
  typescript: string;
}

/** The proposal, without what points into the input (sample lines, the line of the first and last sighting). */
function proposal(json: string): unknown {
  const doc = JSON.parse(json) as Doc;
  for (const h of doc.hosts) {
    for (const f of h.flows) {
      delete f.evidence.samples;
      for (const k of ['first', 'last']) {
        const at = f.evidence[k] as { source?: string; line?: number };
        delete at.source;
        delete at.line;
      }
    }
    for (const flag of (h as unknown as { flags: { evidence: Record<string, unknown> }[] }).flags) {
      delete flag.evidence.samples;
      for (const k of ['first', 'last']) {
        const at = flag.evidence[k] as { source?: string; line?: number };
        delete at.source;
        delete at.line;
      }
    }
  }
  return { hosts: doc.hosts, typescript: doc.typescript };
}

describe('learn --query athena, run in DuckDB', () => {
  const generated = path.join(dir, 'generated.log');
  beforeAll(() => writeFlowLogs(generated, 20000));

  it.each([
    ['the default-format fixture (the host address inferred)', 'flowlogs-v2.log', ['--alias', 'eni-0a1b2c3d4e5f60001=sample']],
    ['the custom-format fixture (flow-direction, instance ids, a forged source, a udp/1434 burst)', 'flowlogs-custom.log', ['--scan-threshold', '10']],
    ['20,000 generated records (eight interfaces, both families, rejected probes)', '', []],
  ])('%s: the proposal from the query result equals the one from the records', async (_name, fixture, extra) => {
    const file = fixture === '' ? generated : path.join(FIXTURES, fixture);
    const table = await load(file);
    const raw = await learnCli(['--from-flow-logs', file, '--format', 'json', ...extra]);
    for (const quoteAll of [true, false]) {
      const csv = await runToCsv(athenaQuery({ table }), quoteAll);
      const fromQuery = await learnCli(['--from-query-result', csv, '--format', 'json', ...extra]);
      expect(fromQuery.exit).toBe(raw.exit);
      expect(proposal(fromQuery.out)).toEqual(proposal(raw.out));
    }
    // The query aggregates (the fixtures hold one record per connection; the generated log repeats them).
    if (fixture !== '') return;
    const rows = fs.readFileSync(await runToCsv(athenaQuery({ table }), false), 'utf8').trim().split('\n').length - 1;
    const records = fs.readFileSync(file, 'utf8').trim().split('\n').length - 1;
    expect(rows).toBeLessThan(records);
  });

  it('selects by time and block in the query: the same proposal as the records of that window and block', async () => {
    const table = await load(generated);
    const since = 1732053600 + 60;
    const until = 1732053600 + 240;
    const lines = fs.readFileSync(generated, 'utf8').trim().split('\n');
    const chosen = lines.filter((l, i) => {
      if (i === 0) return true;
      const f = l.split(' ');
      const start = Number(f[10]);
      const inBlock = (a: string) => a.startsWith('10.20.3.') || a.startsWith('10.20.4.');
      return start >= since && start < until && (inBlock(f[3]) || inBlock(f[4]));
    });
    const subset = path.join(dir, 'subset.log');
    fs.writeFileSync(subset, `${chosen.join('\n')}\n`);
    const query = await learnCli(['--query', 'athena', '--table', table, '--since', new Date(since * 1000).toISOString().replace('.000', ''), '--until', new Date(until * 1000).toISOString().replace('.000', ''), '--where-cidr', '10.20.3.0/24', '--where-cidr', '10.20.4.0/24']);
    expect(query.exit).toBe(0);
    const csv = await runToCsv(query.out, true);
    const fromQuery = await learnCli(['--from-query-result', csv, '--format', 'json']);
    const raw = await learnCli(['--from-flow-logs', subset, '--format', 'json']);
    expect(proposal(fromQuery.out)).toEqual(proposal(raw.out));
    expect((JSON.parse(raw.out) as { hosts: unknown[] }).hosts).toHaveLength(2);
  });
});

describe('the expressions both queries are made of', () => {
  /** Every step of the query, evaluated in DuckDB over `rows`, as SQL and in the lowered (Logs Insights) arithmetic. */
  async function evaluate(rows: string, lowered: boolean): Promise<Record<string, unknown>[]> {
    const layers = resultSteps((name) => ['protocol', 'srcport', 'dstport', 'tcp-flags', 'flow-direction', 'pkt-srcaddr', 'srcaddr'].includes(name));
    let from = `(${rows}) AS r0`;
    layers.forEach((layer, i) => {
      from = `(SELECT *, ${layer.map((st) => `${printSql(lowered ? lower(st.expr) : st.expr)} AS "${st.name}"`).join(', ')} FROM ${from}) AS r${i + 1}`;
    });
    const result = await sql.runAndReadAll(`SELECT "opener", "port", "spoof" FROM ${from} ORDER BY id`);
    // Numbers, whatever integer type each form came out as.
    return (result.getRowObjectsJson() as Record<string, unknown>[]).map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, Number(v)])));
  }

  it('the lowered arithmetic equals the SQL, and the opener and port equal learn\'s serverSide, on every port class (property)', async () => {
    const ports = fc.oneof(fc.constantFrom(0, 22, 25, 53, 80, 123, 443, 1023, 1024, 8080, 33000, 65535), fc.integer({ min: 0, max: 65535 }));
    const row = fc.record({
      protocol: fc.constantFrom(6, 17, 1, 58, 47),
      sport: ports,
      dport: ports,
      flags: fc.option(fc.constantFrom(2, 18, 19, 3), { nil: null }),
      direction: fc.option(fc.constantFrom('ingress', 'egress', '-'), { nil: null }),
      pkt: fc.option(fc.constantFrom('10.0.0.5', '10.0.0.6', '-'), { nil: null }),
    });
    const samples = fc.sample(fc.array(row, { minLength: 200, maxLength: 200 }), { numRuns: 3, seed: 17 }).flat();
    const values = samples.map((r, id) => `(${id}, ${r.protocol}, ${r.sport}, ${r.dport}, ${r.flags ?? 'NULL'}, ${r.direction === null ? 'NULL' : `'${r.direction}'`}, ${r.pkt === null ? 'NULL' : `'${r.pkt}'`}, '10.0.0.5')`);
    const rows = `SELECT * FROM (VALUES ${values.join(', ')}) AS t(id, "protocol", "srcport", "dstport", "tcp_flags", "flow_direction", "pkt_srcaddr", "srcaddr")`;
    const asSql = await evaluate(rows, false);
    const asArithmetic = await evaluate(rows, true);
    expect(asArithmetic).toEqual(asSql);
    samples.forEach((r, i) => {
      const spoof = r.direction === 'egress' && r.pkt !== null && r.pkt !== '-' && r.pkt !== '10.0.0.5';
      const ports = r.protocol === 6 || r.protocol === 17;
      const side = serverSide(r.protocol === 6 ? 'tcp' : r.protocol === 17 ? 'udp' : r.protocol, r.sport, r.dport, r.flags ?? undefined);
      const opener = ports ? (side.side === 'dst' ? 0 : 1) + (side.guessed ? 2 : 0) : 0;
      const port = spoof ? r.dport : ports ? (side.side === 'dst' ? r.dport : r.sport) : 0;
      expect({ i, ...asSql[i] }).toEqual({ i, opener, port, spoof: spoof ? 1 : 0 });
    });
  });
});

describe('nothing from a flag reaches a query as typed', () => {
  it.each([
    ['a table name with SQL', ['--query', 'athena', '--table', 'vpc_flow_logs; DROP TABLE x'], 'TW273 QUERY_OPTION_INVALID'],
    ['a table name with a quote', ['--query', 'athena', '--table', 'a"b'], 'TW273 QUERY_OPTION_INVALID'],
    ['a table name with a comment', ['--query', 'athena', '--table', 'vpc_flow_logs--'], 'TW273 QUERY_OPTION_INVALID'],
    ['four dotted parts', ['--query', 'athena', '--table', 'a.b.c.d'], 'TW273 QUERY_OPTION_INVALID'],
    ['a time with SQL', ['--query', 'athena', '--since', "2024-11-19' OR 1=1 --"], 'TW273 QUERY_OPTION_INVALID'],
    ['a time without a zone', ['--query', 'athena', '--until', '2024-11-19T22:00:00'], 'TW273 QUERY_OPTION_INVALID'],
    ['an impossible date', ['--query', 'logs-insights', '--since', '2024-02-30'], 'TW273 QUERY_OPTION_INVALID'],
    ['a block with SQL', ['--query', 'athena', '--where-cidr', "10.0.0.0/8') OR (1=1"], 'TW103 CIDR_INVALID'],
    ['a block with host bits', ['--query', 'logs-insights', '--where-cidr', '10.0.0.1/8'], 'TW102 CIDR_HOST_BITS'],
    ['a table for Logs Insights', ['--query', 'logs-insights', '--table', 'vpc_flow_logs'], '--table names an Athena table'],
    ['an unknown engine', ['--query', 'bigquery'], 'bigquery'],
    ['logs to read as well', ['--query', 'athena', '--from-flow-logs', path.join(FIXTURES, 'flowlogs-v2.log')], 'it reads no logs'],
    ['query options without --query', ['--from-flow-logs', path.join(FIXTURES, 'flowlogs-v2.log'), '--since', '2024-11-19'], '--since goes with --query'],
  ])('%s is refused', async (_name, args, message) => {
    const e = await learnCli(args).then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(e).toBeDefined();
    expect((e as Error).message).toContain(message);
  });

  it('an accepted table name is identifiers only, each quoted (property)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (text) => {
        let quoted: string | undefined;
        try {
          quoted = tableName(text);
        } catch {
          return;
        }
        expect(text).toMatch(/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){0,2}$/);
        expect(quoted).toBe(text.split('.').map((p) => `"${p}"`).join('.'));
      }),
      { numRuns: 2000 },
    );
  });

  it('writes times as numbers and dates, blocks in their canonical form', () => {
    const q = athenaQuery({ table: 'flowlogs_db.vpc_flow_logs', since: 1732060800, until: 1732147200, cidrs: [] });
    expect(q).toContain('FROM "flowlogs_db"."vpc_flow_logs"');
    expect(q).toContain('"start" >= 1732060800');
    expect(q).toContain(`"date" >= DATE '2024-11-20'`);
    expect(q).toContain(`"date" <= DATE '2024-11-21'`);
  });
});

describe('learn --query logs-insights', () => {
  it('parses the log group\'s format, filters, computes opener, port and spoof in arithmetic, and fits Logs Insights\' 10,000-character limit', async () => {
    const v2 = await learnCli(['--query', 'logs-insights', '--since', '2024-11-19', '--where-cidr', '10.20.0.0/16']);
    expect(v2.exit).toBe(0);
    expect(v2.out).toContain('parse @message "* * * * * * * * * * * * * *" as version, account_id, interface_id, srcaddr, dstaddr, srcport, dstport, protocol, packets, bytes, start, end_, action, log_status');
    expect(v2.out).toContain('| filter log_status = "OK"');
    expect(v2.out).toContain('| filter start >= 1731974400');
    expect(v2.out).toContain('| filter (isIpInSubnet(srcaddr, "10.20.0.0/16") or isIpInSubnet(dstaddr, "10.20.0.0/16"))');
    expect(v2.out).toMatch(/\| stats count\(\*\) as records, sum\(packets\) as packets, sum\(bytes\) as bytes, min\(start\) as first_start, max\(start\) as last_start by interface_id, srcaddr, dstaddr, protocol, port, opener, spoof, action\n/);
    expect(v2.out).not.toMatch(/CASE|WHEN/);
    const custom = fs.readFileSync(path.join(FIXTURES, 'flowlogs-custom.log'), 'utf8').split('\n')[0];
    const v5 = await learnCli(['--query', 'logs-insights', '--flow-log-format', custom]);
    expect(v5.out).toContain('by instance_id, interface_id, flow_direction, srcaddr, dstaddr, pkt_srcaddr, protocol, port, opener, spoof, action');
    for (const q of [v2.out, v5.out]) expect(q.split('\n').filter((l) => !l.startsWith('#')).join('\n').length).toBeLessThan(10000);
    // Every name it parses into is a flow-log field of the format.
    const names = /as ([^\n]+)\n/.exec(v5.out.slice(v5.out.indexOf('parse @message')))?.[1].split(', ') ?? [];
    expect(names.every((n) => FLOW_LOG_FIELDS.has(n.replace(/_/g, '-')) || n === 'end_')).toBe(true);
  });
});

describe('reading a query result', () => {
  it('refuses a CSV that is not one, counts rows it cannot read, and keeps going', async () => {
    const csv = path.join(dir, 'odd.csv');
    fs.writeFileSync(
      csv,
      [
        'instance_id,interface_id,flow_direction,srcaddr,dstaddr,pkt_srcaddr,protocol,port,opener,spoof,action,records,packets,bytes,first_start,last_start',
        'i-1,eni-1,ingress,192.0.2.1,10.0.0.5,,6,443,0,0,ACCEPT,3,30,3000,1732053600,1732053700',
        'i-1,eni-1,ingress,192.0.2.1,10.0.0.5,,6,443,7,0,ACCEPT,3,30,3000,1732053600,1732053700',
        'i-1,eni-1,ingress,"192.0.2.1,10.0.0.5,,6,443,0,0,ACCEPT,3,30,3000,1732053600,1732053700',
        'i-1,eni-1,egress,10.0.0.5,192.0.2.9,10.0.0.5,6,443,1,1,ACCEPT,1,1,1,1732053600,1732053600',
        'i-1,eni-1,ingress,192.0.2.1,10.0.0.5,,6,443,0,0,ACCEPT,0,30,3000,1732053600,1732053700',
      ].join('\r\n'),
    );
    const r = await learnCli(['--from-query-result', csv, '--format', 'json']);
    const doc = JSON.parse(r.out) as { inputs: { kind: string; lines: number; observations: number; malformed: number; skipped: number }[]; problems: { malformed: { reasons: Record<string, number> } }; hosts: { flows: { evidence: { records: number; flows: number } }[] }[] };
    expect(doc.inputs[0]).toMatchObject({ kind: 'query', lines: 6, observations: 1, malformed: 4, skipped: 1 });
    expect(Object.keys(doc.problems.malformed.reasons).sort()).toEqual([
      'not a CSV row (unbalanced quotes, or more than 64 fields)',
      'opener/spoof is not a code the query writes',
      'records "0" is not a count',
      'the query took this row for a forged source, but its flow-direction and pkt-srcaddr do not say so',
    ]);
    expect(doc.hosts[0].flows[0].evidence).toMatchObject({ records: 3, flows: 3 });
    const notOurs = path.join(dir, 'other.csv');
    fs.writeFileSync(notOurs, 'a,b,c\n1,2,3\n');
    const other = await learnCli(['--from-query-result', notOurs, '--format', 'json']);
    const malformed = (JSON.parse(other.out) as { problems: { malformed: { count: number; reasons: Record<string, number> } } }).problems.malformed;
    expect(malformed.count).toBe(2);
    expect(Object.keys(malformed.reasons)[0]).toBe('the header "a,b,c" lacks srcaddr, dstaddr, protocol, port, opener, spoof, records: this is not the result of a query twinwall learn --query wrote');
  });
});
