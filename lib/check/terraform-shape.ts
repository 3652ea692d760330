/**
 * The one typed gate between a synthesized Terraform JSON document (cdk.tf.json, possibly
 * hand-edited or hostile) and every reader of it (lib/check/terraform.ts, the lint subject, the
 * report). `terraformJson(value)` checks the JSON types of everything a reader touches against
 * TERRAFORM_SHAPE and returns a normalised copy the readers may trust:
 *
 * - the document, `resource`, each resource type and each resource body are objects (not null,
 *   not arrays);
 * - every attribute a reader uses has a JSON type Terraform accepts for it: a string where a
 *   string is expected, a number or a string (Terraform converts, and `${…}` expressions are
 *   strings) where a number is, a list or a string (an expression standing for the whole list)
 *   where a list is, an object or a list of objects for nested blocks;
 * - attributes set to `null` (Terraform's "unset") are dropped;
 * - resource types and names are Terraform names (a letter or "_", then letters, digits, "_" or
 *   "-"), as Terraform itself requires;
 * - every text a reader may print (ids, CIDRs, descriptions, tag values) is one line: line
 *   breaks and other control characters in it are replaced by visible escapes (`\n`, `\x1b`,
 *   `\u202e`, lib/terminal.ts), so no name or description can forge a line of `check`'s output
 *   or rewrite the terminal. Only user_data keeps its lines.
 *
 * Anything else is TW291 ARTEFACT_SHAPE naming the JSON path and what was found, e.g.
 * `$.resource.aws_instance.x is null, expected an object`. Values of the right type that the
 * readers cannot use (a CIDR that is an expression, an unknown protocol) stay the readers'
 * business: they are findings ("cannot decide"), never agreement.
 *
 * A reader that starts using a new attribute adds it to TERRAFORM_SHAPE first.
 */
import { TwinwallError } from '../errors';
import { terminalLine } from '../terminal';

type Shape =
  | { readonly t: 'any' }
  | { readonly t: 'string' }
  | { readonly t: 'text' }
  | { readonly t: 'number' }
  | { readonly t: 'bool' }
  | { readonly t: 'scalar' }
  | { readonly t: 'list'; readonly of: Shape }
  | { readonly t: 'blocks'; readonly of: Shape }
  | { readonly t: 'map'; readonly of: Shape }
  | { readonly t: 'object'; readonly fields: Readonly<Record<string, Shape>> };

const any: Shape = { t: 'any' };
/** One line of text (control characters escaped in the normalised copy). */
const str: Shape = { t: 'string' };
/** Text that may hold lines: user_data. */
const text: Shape = { t: 'text' };
const num: Shape = { t: 'number' };
const bool: Shape = { t: 'bool' };
const scalar: Shape = { t: 'scalar' };
const list = (of: Shape): Shape => ({ t: 'list', of });
const blocks = (of: Shape): Shape => ({ t: 'blocks', of });
const map = (of: Shape): Shape => ({ t: 'map', of });
const obj = (fields: Record<string, Shape>): Shape => ({ t: 'object', fields });

/** cdktf's "//" metadata: the construct path of a resource. */
const META = obj({ metadata: obj({ path: str, uniqueId: str }) });
/** AWS tags: a map of strings (Terraform converts numbers and booleans), or one expression. */
const TAGS = map(scalar);
/** Fields every resource may carry that some reader looks at. */
const COMMON = { '//': META, count: any, for_each: any, dynamic: any, tags: TAGS, tags_all: TAGS };

const VPC_RULE = obj({
  ...COMMON,
  security_group_id: str,
  description: str,
  ip_protocol: scalar,
  from_port: num,
  to_port: num,
  cidr_ipv4: str,
  cidr_ipv6: str,
  referenced_security_group_id: str,
  prefix_list_id: str,
});

/** What aws_security_group_rule and the inline blocks of aws_security_group share. */
const CLASSIC_RULE = {
  description: str,
  protocol: scalar,
  from_port: num,
  to_port: num,
  cidr_blocks: list(str),
  ipv6_cidr_blocks: list(str),
  prefix_list_ids: list(str),
  self: bool,
};

const INLINE_RULE = obj({ ...CLASSIC_RULE, security_groups: list(str) });

const METADATA_OPTIONS = blocks(obj({ http_endpoint: str, http_tokens: str }));

/** Every resource type a reader uses, and the attributes it reads. Other types: objects, unread. */
export const TERRAFORM_SHAPE: Readonly<Record<string, Shape>> = {
  aws_vpc_security_group_ingress_rule: VPC_RULE,
  aws_vpc_security_group_egress_rule: VPC_RULE,
  aws_security_group_rule: obj({ ...COMMON, ...CLASSIC_RULE, type: str, security_group_id: str, source_security_group_id: str }),
  aws_security_group: obj({ ...COMMON, vpc_id: str, description: str, ingress: list(INLINE_RULE), egress: list(INLINE_RULE) }),
  aws_ec2_managed_prefix_list: obj({ ...COMMON, entry: blocks(obj({ cidr: str, description: str })) }),
  aws_network_interface: obj({ ...COMMON, security_groups: list(str), subnet_id: str }),
  aws_network_interface_sg_attachment: obj({ ...COMMON, network_interface_id: str, security_group_id: str }),
  aws_instance: obj({
    ...COMMON,
    vpc_security_group_ids: list(str),
    security_groups: list(str),
    subnet_id: str,
    network_interface: blocks(obj({ network_interface_id: str, device_index: num })),
    launch_template: any,
    user_data: text,
    user_data_base64: text,
    source_dest_check: bool,
    ipv6_address_count: num,
    ipv6_addresses: list(str),
    enable_primary_ipv6: bool,
    metadata_options: METADATA_OPTIONS,
  }),
  aws_launch_template: obj({
    ...COMMON,
    vpc_security_group_ids: list(str),
    security_group_names: list(str),
    network_interfaces: blocks(
      obj({
        security_groups: list(str),
        subnet_id: str,
        ipv6_address_count: num,
        ipv6_addresses: list(str),
        ipv6_prefix_count: num,
        primary_ipv6: bool,
      }),
    ),
    user_data: text,
    metadata_options: METADATA_OPTIONS,
  }),
  aws_subnet: obj({ ...COMMON, vpc_id: str, cidr_block: str, ipv6_cidr_block: str, assign_ipv6_address_on_creation: bool, ipv6_native: bool }),
  aws_vpc: obj({ ...COMMON, cidr_block: str, ipv6_cidr_block: str }),
  aws_vpc_ipv4_cidr_block_association: obj({ ...COMMON, vpc_id: str, cidr_block: str }),
};

/** What Terraform accepts as a resource type or name (and what jsonPath writes after a dot). */
const TERRAFORM_NAME = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/** `$.resource.aws_instance.x.ingress[0]`, with odd keys as `["…"]` (JSON-quoted: one line, whatever the key). */
export function jsonPath(path: readonly (string | number)[]): string {
  return `$${path.map((k) => (typeof k === 'number' ? `[${k}]` : TERRAFORM_NAME.test(k) ? `.${k}` : `[${JSON.stringify(k)}]`)).join('')}`;
}

/** "null", "an array", "a string", "a number", "a boolean", "an object". */
function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'number') return 'a number';
  if (typeof value === 'boolean') return 'a boolean';
  return `a ${typeof value}`;
}

const EXPECTED: Record<Shape['t'], string> = {
  any: 'a value',
  string: 'a string',
  text: 'a string',
  number: 'a number (or a string)',
  bool: 'a boolean (or a string)',
  scalar: 'a string, number or boolean',
  list: 'a list (or a string expression)',
  blocks: 'an object or a list of objects',
  map: 'an object (or a string expression)',
  object: 'an object',
};

function shapeError(path: readonly (string | number)[], value: unknown, expected: string): TwinwallError {
  return new TwinwallError('ARTEFACT_SHAPE', {
    value: jsonPath(path),
    problem: `${jsonPath(path)} is ${kindOf(value)}, expected ${expected}.`,
    fix: 'synthesize the stack again (`npx cdktf synth`); a cdk.tf.json edited by hand must keep the JSON types Terraform reads.',
  });
}

function nameError(path: readonly (string | number)[]): TwinwallError {
  return new TwinwallError('ARTEFACT_SHAPE', {
    value: jsonPath(path),
    problem: `${jsonPath(path)} is not a Terraform name (a letter or "_", then letters, digits, "_" or "-").`,
    fix: 'synthesize the stack again (`npx cdktf synth`); Terraform itself refuses such a name.',
  });
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * Check `value` against `shape` at `path`; returns the normalised copy (null attributes dropped),
 * or with `owned` the value itself, normalised in place.
 */
function check(value: unknown, shape: Shape, path: (string | number)[], owned: boolean): unknown {
  switch (shape.t) {
    case 'any':
      return value;
    case 'string':
      if (typeof value !== 'string') throw shapeError(path, value, EXPECTED.string);
      return terminalLine(value);
    case 'text':
      if (typeof value !== 'string') throw shapeError(path, value, EXPECTED.text);
      return value;
    case 'number':
      if (typeof value !== 'string' && !(typeof value === 'number' && Number.isFinite(value))) throw shapeError(path, value, EXPECTED.number);
      return value;
    case 'bool':
      if (typeof value !== 'boolean' && typeof value !== 'string') throw shapeError(path, value, EXPECTED.bool);
      return value;
    case 'scalar':
      if (typeof value !== 'string' && typeof value !== 'boolean' && !(typeof value === 'number' && Number.isFinite(value))) throw shapeError(path, value, EXPECTED.scalar);
      return typeof value === 'string' ? terminalLine(value) : value;
    case 'list':
      if (typeof value === 'string') return value;
      if (!Array.isArray(value)) throw shapeError(path, value, EXPECTED.list);
      return elements(value, (v, i) => check(v, shape.of, [...path, i], owned), owned);
    case 'blocks':
      if (Array.isArray(value)) return elements(value, (v, i) => check(v, shape.of, [...path, i], owned), owned);
      if (!isPlainObject(value)) throw shapeError(path, value, EXPECTED.blocks);
      return check(value, shape.of, path, owned);
    case 'map': {
      if (typeof value === 'string') return value;
      if (!isPlainObject(value)) throw shapeError(path, value, EXPECTED.map);
      return fields(value, (k, v) => check(v, shape.of, [...path, k], owned), owned);
    }
    case 'object': {
      if (!isPlainObject(value)) throw shapeError(path, value, EXPECTED.object);
      return fields(
        value,
        (k, v) => {
          const field = Object.prototype.hasOwnProperty.call(shape.fields, k) ? shape.fields[k] : undefined;
          return field === undefined ? v : check(v, field, [...path, k], owned);
        },
        owned,
      );
    }
  }
}

/** The elements of `list` through `f`: a new array, or with `owned` the same one. */
function elements(list: unknown[], f: (v: unknown, i: number) => unknown, owned: boolean): unknown[] {
  if (!owned) return list.map(f);
  for (let i = 0; i < list.length; i++) list[i] = f(list[i], i);
  return list;
}

/**
 * The attributes of `object` through `f`, those set to null dropped (Terraform: an attribute set
 * to null is unset): a new object, or with `owned` the same one.
 */
function fields(object: Record<string, unknown>, f: (k: string, v: unknown) => unknown, owned: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = owned ? object : {};
  for (const [k, v] of Object.entries(object)) {
    if (v === null) {
      if (owned) delete object[k];
      continue;
    }
    setOwn(out, k, f(k, v));
  }
  return out;
}

/** Set a key as an own property, whatever its name ("__proto__" included). */
function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

const CHECKED = new WeakSet<object>();

/**
 * The Terraform JSON document `value`, checked and normalised (see the module comment). Throws
 * TW291 ARTEFACT_SHAPE on the first value of the wrong JSON type. Idempotent and cheap on its
 * own output.
 *
 * `owned`: the caller gives `value` up (a document it has just parsed and holds nowhere else),
 * so it is normalised in place rather than copied, and a large document is never held twice.
 * After a TW291 it is half normalised and must be dropped.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function terraformJson(value: unknown, options: { readonly owned?: boolean } = {}): any {
  if (isPlainObject(value) && CHECKED.has(value)) return value;
  if (!isPlainObject(value)) throw shapeError([], value, 'an object (a Terraform JSON document)');
  const owned = options.owned === true;
  const out: Record<string, unknown> = owned ? value : { ...value };
  if (value.resource !== undefined) {
    if (!isPlainObject(value.resource)) throw shapeError(['resource'], value.resource, 'an object (resource type → name → body)');
    const resource: Record<string, unknown> = owned ? value.resource : {};
    for (const [type, byName] of Object.entries(value.resource)) {
      if (!TERRAFORM_NAME.test(type)) throw nameError(['resource', type]);
      if (!isPlainObject(byName)) throw shapeError(['resource', type], byName, 'an object (resource name → body)');
      const bodies: Record<string, unknown> = owned ? byName : {};
      const shape = Object.prototype.hasOwnProperty.call(TERRAFORM_SHAPE, type) ? TERRAFORM_SHAPE[type] : obj({ ...COMMON });
      for (const [name, body] of Object.entries(byName)) {
        if (!TERRAFORM_NAME.test(name)) throw nameError(['resource', type, name]);
        setOwn(bodies, name, check(body, shape, ['resource', type, name], owned));
      }
      setOwn(resource, type, bodies);
    }
    out.resource = resource;
  }
  CHECKED.add(out);
  return out;
}
