/**
 * Recognise Terraform tokens (values cdktf resolves only at deploy time) without importing cdktf.
 *
 * A firewall rule needs literal addresses and ports at synth time: the host wall is rendered into
 * user-data before Terraform runs, so `${aws_vpc.main.cidr_block}` cannot be expanded there. cdktf
 * encodes unresolved strings as `${TfToken[…]}` (lists `#{TfToken[…]}`, maps `&{TfToken[…]}`) and
 * unresolved numbers as NaN-boxed doubles whose top 16 bits are 0xfdff (lists 0xfbff). Raw
 * Terraform interpolations (`${…}`) written by hand are treated the same way.
 */
import { TwinwallError, show } from './errors';

/** The start of cdktf's encoding of an unresolved string, list or map. */
const CDKTF_TOKEN_START = /[$#&]\{TfToken\[/;
/** One whole cdktf token. */
const CDKTF_TOKEN = /[$#&]\{TfToken\[[^\]]*\]\}/;
/** A cdktf token or a hand-written Terraform interpolation. */
const STRING_TOKEN = new RegExp(`${CDKTF_TOKEN_START.source}|\\$\\{`);

/**
 * The first cdktf token in rendered text (e.g. user-data), else undefined. Unlike isStringToken
 * it ignores a bare "${", which rendered text may hold literally.
 */
export function cdktfTokenIn(text: string): { readonly token: string | undefined } | undefined {
  if (!CDKTF_TOKEN_START.test(text)) return undefined;
  return { token: CDKTF_TOKEN.exec(text)?.[0] };
}

/** True when `value` is (or contains) an unresolved Terraform / cdktf string token. */
export function isStringToken(value: string): boolean {
  return STRING_TOKEN.test(value);
}

/** True when `value` is a cdktf number token. */
export function isNumberToken(value: number): boolean {
  if (!Number.isFinite(value)) return false;
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, value, true);
  const top16 = view.getUint16(6, true);
  return top16 === 0xfdff || top16 === 0xfbff;
}

/** Throw UNRESOLVED_TOKEN if `value` is a token; `what` says what literal was needed. */
export function requireLiteral(value: string | number, what: string, example: string): void {
  const token = typeof value === 'string' ? isStringToken(value) : isNumberToken(value);
  if (token) {
    throw new TwinwallError('UNRESOLVED_TOKEN', {
      value,
      problem: `${what} ${show(value)} is a Terraform token that is only known at deploy time, but the host wall is rendered at synth time.`,
      fix: `pass the literal value (for example ${example}), e.g. from cdktf.json context or a constant shared with the resource that defines it.`,
    });
  }
}
