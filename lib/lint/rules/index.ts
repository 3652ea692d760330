/**
 * The lint registry: every rule, one file each (id, level, title, fix, references and check in
 * one place), in id order. Adding a rule is a new file here and its line below; its id is never
 * renumbered or reused (a retired rule keeps its file, its check returning nothing).
 */
import { LintRule } from '../rule';
import { TWL001 } from './twl001-egress-all-to-anywhere';
import { TWL002 } from './twl002-admin-from-anywhere';
import { TWL003 } from './twl003-open-resolver';
import { TWL004 } from './twl004-imds-all-users';
import { TWL005 } from './twl005-ipv6-unfiltered';
import { TWL006 } from './twl006-rule-without-description';
import { TWL007 } from './twl007-sg-quota-exceeded';
import { TWL008 } from './twl008-egress-to-anywhere-justified';
import { TWL009 } from './twl009-egress-to-anywhere-unexplained';
import { TWL010 } from './twl010-host-wall-audit-mode';
import { TWL011 } from './twl011-egress-worm-port';

export { WORM_PORTS } from './twl011-egress-worm-port';

export const LINT_REGISTRY: readonly LintRule[] = [TWL001, TWL002, TWL003, TWL004, TWL005, TWL006, TWL007, TWL008, TWL009, TWL010, TWL011];
