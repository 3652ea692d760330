/**
 * Lint at synth: a cdktf Aspect that runs twinwall's lint checks (lib/lint) over every
 * FilteredHost of a stack and reports each finding as an Annotation on the host — errors fail
 * `cdktf synth`, warnings and notices are printed, suppressed findings are recorded as info with
 * their reason.
 *
 * FilteredHost adds the Aspect to its stack itself (once per stack), so lint cannot be forgotten;
 * adding it by hand (`Aspects.of(stack).add(new TwinwallLint())`) is harmless, it runs once.
 *
 * What it judges: the host's rendered network wall (with the exact role and reason of each rule),
 * plus what only the whole stack shows — rules added by hand to the host's groups (any resource
 * kind), other groups attached to its instances, an instance with IPv6, an instance that uses the
 * group without the host's user-data (so it has no host wall). Those are read from the stack's
 * resources, resolved as Terraform will see them, with the checker's artefact reader.
 */
import { Annotations, Aspects, DefaultTokenResolver, IAspect, StringConcat, TerraformResource, TerraformStack, Tokenization } from 'cdktf';
import { IConstruct } from 'constructs';
import { HostRendering } from '../lib/render';
import { HostArtefact, readStackArtefacts } from '../lib/check/terraform';
import { TwinwallError } from '../lib/errors';
import { LintFinding, formatFinding, lintHost } from '../lib/lint/engine';
import { ipv6Evidence, lintGroupsFromArtefact, lintRuleFromArtefact, metadataEndpoint } from '../lib/lint/from-artefacts';
import { subjectFromRendering } from '../lib/lint/from-rendering';
import { LintGroup, LintSgRule, Suppression } from '../lib/lint/model';

/** What the Aspect needs of a host (FilteredHost has all of it). */
export interface LintableHost extends IConstruct {
  readonly rendering: HostRendering;
  readonly securityGroup: TerraformResource;
  readonly securityGroups?: readonly TerraformResource[];
  readonly ingressRules: readonly TerraformResource[];
  readonly egressRules: readonly TerraformResource[];
  /** The user-data as instances receive it (a lazy value; `rendering.userData.base64` is its text). */
  readonly userDataBase64: string;
  readonly lintSuppressions: readonly Suppression[];
}

/**
 * The brand a fully built FilteredHost carries. `Symbol.for`, as aws-cdk's `Construct.isConstruct`
 * does, so a host made by another copy of twinwall in the same app is still recognised, where
 * `instanceof` would not be; and no other construct that happens to have the same fields is.
 */
export const HOST_BRAND = Symbol.for('twinwall.FilteredHost');

function isLintableHost(c: IConstruct): c is LintableHost {
  return (c as unknown as Record<symbol, unknown>)[HOST_BRAND] === true;
}

/** Resource types whose configuration lint reads from the stack. */
const READ_TYPES = new Set([
  'aws_security_group',
  'aws_vpc_security_group_ingress_rule',
  'aws_vpc_security_group_egress_rule',
  'aws_security_group_rule',
  'aws_instance',
  'aws_launch_template',
  'aws_network_interface',
  'aws_network_interface_sg_attachment',
  'aws_subnet',
  'aws_ec2_managed_prefix_list',
]);

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

const RESOLVER = new DefaultTokenResolver(new StringConcat());

/** A key Terraform JSON writes literally (an attribute name), never a token a resolver would change. */
const PLAIN_KEY = /^[A-Za-z0-9_-]+$/;

/**
 * `value` without the entries of plain objects whose value is undefined, for `Tokenization.resolve`:
 * it drops those entries itself, but only after resolving each key and value, and a provider's
 * `toTerraform()` lists every attribute it knows (an aws_instance: 47 undefined of 67). Tokens,
 * arrays' own elements and other values are kept as they are, so the resolved JSON is the same.
 */
function withoutUndefined(value: Json): Json {
  if (Array.isArray(value)) return value.map(withoutUndefined);
  if (value === null || typeof value !== 'object' || typeof value.resolve === 'function') return value;
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value;
  const out: Json = {};
  for (const key of Object.keys(value)) {
    const v = value[key];
    if (v === undefined && PLAIN_KEY.test(key)) continue;
    out[key] = withoutUndefined(v);
  }
  return out;
}

/**
 * The stack's relevant resources as Terraform JSON (tokens resolved), like cdk.tf.json holds them,
 * minus `skip`: the hosts' own rendered rules, which lint judges from the rendering (with their
 * roles and reasons) and which are most of a stack, so resolving them would double synth time.
 * Exported for tests only (not part of the package's API).
 */
export function stackJson(stack: TerraformStack, skip: ReadonlySet<IConstruct>): Json {
  // Collected in Maps and made objects once at the end: re-spreading a type's growing object for
  // every resource took time quadratic in the stack's size. Same keys, same order, same values.
  const byType = new Map<string, Map<string, Json>>();
  for (const c of stack.node.findAll()) {
    if (!(c instanceof TerraformResource) || !READ_TYPES.has(c.terraformResourceType) || skip.has(c)) continue;
    const fragment = Tokenization.resolve(withoutUndefined(c.toTerraform()), { scope: stack, preparing: false, resolver: RESOLVER }) as Json;
    for (const [type, byName] of Object.entries((fragment?.resource ?? {}) as Record<string, Record<string, Json>>)) {
      const into = byType.get(type) ?? new Map<string, Json>();
      byType.set(type, into);
      for (const [name, body] of Object.entries(byName)) into.set(name, body);
    }
  }
  return { resource: Object.fromEntries([...byType].map(([type, byName]) => [type, Object.fromEntries(byName)])) };
}

function address(r: TerraformResource): string {
  return `${r.terraformResourceType}.${r.friendlyUniqueId}`;
}

/** Every lint finding of every FilteredHost in the stack (no Annotations: `TwinwallLint` adds those). */
export function lintStack(stack: TerraformStack): { host: LintableHost; findings: LintFinding[] }[] {
  const hosts = stack.node.findAll().filter(isLintableHost);
  if (hosts.length === 0) return [];
  const tf = stackJson(stack, new Set(hosts.flatMap((h) => [...h.ingressRules, ...h.egressRules])));
  // The checker's reader: the stack's hosts, and every rule on each group whatever resource kind wrote it.
  const { hosts: artefacts, groupRules } = readStackArtefacts(stack.node.id, tf);
  // An index, so a stack of a thousand hosts costs a thousand look-ups, not a million scans.
  const byGroup = new Map<string, typeof artefacts>();
  for (const a of artefacts) for (const g of new Set(a.groups)) byGroup.set(g, [...(byGroup.get(g) ?? []), a]);
  const stackName = stack.node.id;
  return hosts.map((h) => {
    const groups = h.securityGroups ?? [h.securityGroup];
    const groupKeys = groups.map(address);
    // Made only for a group with rules in `tf` (a resource's address is a hash of its path).
    let rendered: Set<string> | undefined;
    const extraRules = new Map<number, LintSgRule[]>();
    groupKeys.forEach((key, j) => {
      const onGroup = groupRules.get(key) ?? [];
      if (onGroup.length === 0) return;
      rendered ??= new Set([...h.ingressRules, ...h.egressRules].map(address));
      const mine = rendered;
      const extra = onGroup.filter((r) => !mine.has(r.address)).map(lintRuleFromArtefact).filter((r): r is LintSgRule => r !== undefined);
      if (extra.length > 0) extraRules.set(j, extra);
    });
    const attached = [...new Set(groupKeys.flatMap((g) => byGroup.get(g) ?? []))];
    const extraGroups: LintGroup[] = [];
    const seen = new Set(groupKeys);
    for (const a of attached) {
      const others = a.groups.filter((g) => !seen.has(g));
      others.forEach((g) => seen.add(g));
      extraGroups.push(...lintGroupsFromArtefact(others, a.rules));
    }
    const ipv6 = attached.map((a) => ipv6Evidence(tf, a.address)).find((e) => e !== undefined);
    const foreign = attached.filter((a) => a.userData?.base64 !== h.rendering.userData.base64);
    for (const a of foreign) refuseWithoutHostWall(h, a, tf);
    const endpoints = attached.map((a) => metadataEndpoint(tf, a.address));
    const subject = subjectFromRendering(h.rendering, {
      stack: stackName,
      location: foreign.length > 0 ? `${h.node.path} (${foreign.map((a) => a.address).join(', ')})` : h.node.path,
      groupNames: groups.map((g) => g.node.path),
      suppressions: h.lintSuppressions,
      extraRules,
      extraGroups,
      ...(ipv6 !== undefined ? { ipv6 } : {}),
      hostWallMissing: foreign.length > 0,
      metadataEndpoint: endpoints.length > 0 && endpoints.every((e) => e === 'disabled') ? 'disabled' : 'enabled',
    });
    return { host: h, findings: lintHost(subject) };
  });
}

/**
 * A host's security group on an instance or launch template that does not carry the host's
 * user-data exactly (`user_data_base64`, or a launch template's `user_data`) would boot without
 * the host wall, behind a network wall that assumes it: refused at synth. An instance that takes
 * its user-data from a launch template is left to the template (and to `twinwall check`).
 */
function refuseWithoutHostWall(h: LintableHost, a: HostArtefact, tf: Json): void {
  const body = a.address.startsWith('aws_instance.') ? tf.resource?.aws_instance?.[a.address.slice('aws_instance.'.length)] : undefined;
  if (a.userData === undefined && body?.launch_template !== undefined) return;
  const where = `${a.address}${a.path !== undefined ? ` (${a.path})` : ''}`;
  const plain = a.userData?.plain;
  const problem =
    plain !== undefined
      ? `${where} carries the security group of host ${h.node.path} but passes user-data as \`user_data\`, which Terraform interpolates (\${…}, %{…}) and which is not the host wall's exact document.`
      : a.userData === undefined
        ? `${where} carries the security group of host ${h.node.path} but no user-data, so it would boot without the host wall.`
        : `${where} carries the security group of host ${h.node.path} but another user-data than the host's, so it would boot without the host wall.`;
  throw new TwinwallError('HOST_WALL_NOT_ATTACHED', {
    value: a.address,
    path: [h.node.path],
    problem,
    fix: 'attach both walls with host.attachTo(instance) (or pass host.userDataBase64 as user_data_base64, a launch template\'s user_data), and nothing else as user-data.',
  });
}

/** Annotate one finding on its host: errors fail synth, warnings and notices do not. */
function annotate(host: IConstruct, f: LintFinding): void {
  const text = `twinwall lint ${formatFinding(f)}`;
  const a = Annotations.of(host);
  if (f.suppressed !== undefined) a.addInfo(text);
  else if (f.level === 'error') a.addError(text);
  else if (f.level === 'warning') a.addWarning(text);
  else a.addInfo(text);
}

/** The lint Aspect. Runs once per stack, however often aspects are invoked. */
export class TwinwallLint implements IAspect {
  /** Add the Aspect to the stack of `scope`, unless it is there already. */
  public static ensure(scope: IConstruct): void {
    const stack = TerraformStack.of(scope);
    if (!Aspects.of(stack).all.some((a) => a instanceof TwinwallLint)) Aspects.of(stack).add(new TwinwallLint());
  }

  private readonly done = new WeakSet<IConstruct>();

  public visit(node: IConstruct): void {
    if (!TerraformStack.isStack(node) || this.done.has(node)) return;
    this.done.add(node);
    for (const { host, findings } of lintStack(node)) for (const f of findings) annotate(host, f);
  }
}
