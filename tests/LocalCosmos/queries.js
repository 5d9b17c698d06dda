// Queries of the local Cosmos DB server: the SQL engine of @vercel/cosmosdb-server
// (@zeit/cosmosdb-query 0.7.2, kept for WHERE, projections, ORDER BY, TOP, JOIN and the
// aggregates), what it lacks, and the query plans the .NET SDK asks the gateway for.
//
// On a container of several partition key ranges the SDK runs a cross-partition query as the
// gateway's plan says: it sends the plan's `rewrittenQuery` to every range and merges the answers
// itself (ORDER BY: a k-way merge on `orderByItems`; aggregates: it combines each range's partial
// `{"item": …}`; DISTINCT, OFFSET/LIMIT and TOP: it applies them to the merged stream). So the
// plan and the rewritten queries below follow the shapes that the SDK's query pipeline reads
// (Microsoft.Azure.Cosmos, Query/Core/Pipeline: OrderByQueryResult, AggregateItem,
// SingleGroupAggregator, MinMaxAggregator, AverageAggregator).

"use strict";

const { fromPackage } = require("./vendor");
const { Memo } = require("./memo");

// ---------------------------------------------------------------------------------------------
// Fix 1 — query cost. The SQL engine compiles every query to JavaScript that builds its working
// set with `$c.reduce(($, c) => [...$, {c}], [])`: copying the accumulator on every element makes
// each page O(N^2) (2 s a page at 20,000 documents). We rewrite, in the generated syntax tree,
// every array literal that starts with `...$` into `($.push(rest), $)`: same result, O(N).
// The accumulator is always a fresh `[]` of that reduce call, so mutating it is safe.
// ---------------------------------------------------------------------------------------------
const transformer = fromPackage("@zeit/cosmosdb-query/lib/transformer");
const originalTransform = transformer.default;

function isAccumulatorSpread(node) {
  return node && node.type === "ArrayExpression" && node.elements.length > 0 &&
    node.elements[0] && node.elements[0].type === "SpreadElement" &&
    node.elements[0].argument.type === "Identifier" && node.elements[0].argument.name === "$";
}

function rewriteAccumulatorSpreads(node) {
  if (!node || typeof node !== "object") return node;
  if (Array.isArray(node)) return node.map(rewriteAccumulatorSpreads);
  for (const key of Object.keys(node)) node[key] = rewriteAccumulatorSpreads(node[key]);
  if (isAccumulatorSpread(node)) {
    const acc = { type: "Identifier", name: "$" };
    return {
      type: "SequenceExpression",
      expressions: [
        {
          type: "CallExpression",
          callee: { type: "MemberExpression", object: acc, property: { type: "Identifier", name: "push" }, computed: false },
          arguments: node.elements.slice(1)
        },
        acc
      ]
    };
  }
  return node;
}

transformer.default = (ast) => rewriteAccumulatorSpreads(originalTransform(ast));

// Fix 1c — the executor evaluates the generated code with `new Function` on every execution, so
// each page ran brand-new closures that the JIT never optimises (~60 ms a page at 20,000
// documents). The same code text always yields the same function: compile it once.
const executor = fromPackage("@zeit/cosmosdb-query/lib/executor");
const aggregateFunctions = fromPackage("@zeit/cosmosdb-query/lib/aggregate-functions");
const builtinFunctions = fromPackage("@zeit/cosmosdb-query/lib/builtin-functions");
const queryHelpers = fromPackage("@zeit/cosmosdb-query/lib/helpers");
const compiledCode = new Memo(500);
executor.default = (collection, { code, parameters, udf = {}, maxItemCount, continuation, compositeIndexes }) => {
  const execute = compiledCode.get(code, () => new Function(`"use strict";return (${code})`)()); // eslint-disable-line no-new-func
  const params = {};
  (parameters || []).forEach(({ name, value }) => { params[name.slice(1)] = value; });
  return execute(aggregateFunctions, builtinFunctions, collection, queryHelpers, udf, params, maxItemCount, continuation, compositeIndexes);
};

const createQuery = fromPackage("@zeit/cosmosdb-query").default;
const { SyntaxError: QuerySyntaxError } = fromPackage("@zeit/cosmosdb-query");
const continuationTokens = fromPackage("@zeit/cosmosdb-query/lib/continuation-token");

/// A query the service would reject (answered 400 with its message).
class BadQuery extends Error {
  constructor(message) { super(message); this.badRequest = true; }
}

// Compiling a query costs a few milliseconds; a paged scan sends the same text for every page.
const compiledQueries = new Memo(500);

function compileQuery(sql) {
  return compiledQueries.get(sql, () => createQuery(sql));
}

/// A query object for a syntax tree built here (the engine's Query compiles `ast` lazily).
function queryOfAst(key, ast) {
  return compiledQueries.get(key, () => {
    const query = createQuery("SELECT VALUE 1");
    query.ast = ast;
    query._code = null;
    return query;
  });
}

// ---------------------------------------------------------------------------------------------
// Clauses. The engine's grammar has no DISTINCT, OFFSET … LIMIT or GROUP BY, and the planner
// needs the text of each clause to write the rewritten queries, so a query is first cut into its
// top-level clauses by a scanner that skips string literals and anything in brackets (so a
// subquery's keywords and a property named `from` stay where they are).
// ---------------------------------------------------------------------------------------------
const CLAUSE_WORDS = new Set(["SELECT", "DISTINCT", "TOP", "VALUE", "FROM", "WHERE", "GROUP", "ORDER", "BY", "OFFSET", "LIMIT"]);

function topLevelWords(sql) {
  const words = [];
  let depth = 0;
  for (let i = 0; i < sql.length;) {
    const ch = sql[i];
    if (ch === "'" || ch === "\"") {
      i += 1;
      while (i < sql.length && sql[i] !== ch) i += sql[i] === "\\" ? 2 : 1;
      i += 1;
    } else if (ch === "-" && sql[i + 1] === "-") {
      while (i < sql.length && sql[i] !== "\n") i += 1;
    } else if (ch === "(" || ch === "[" || ch === "{") {
      depth += 1; i += 1;
    } else if (ch === ")" || ch === "]" || ch === "}") {
      depth -= 1; i += 1;
    } else if (/[A-Za-z_]/.test(ch)) {
      let j = i;
      while (j < sql.length && /[A-Za-z0-9_]/.test(sql[j])) j += 1;
      const word = sql.slice(i, j).toUpperCase();
      if (depth === 0 && CLAUSE_WORDS.has(word) && sql[i - 1] !== "." && sql[i - 1] !== "@") words.push({ word, start: i, end: j });
      i = j;
    } else {
      i += 1;
    }
  }
  return words;
}

/// Splits a comma-separated list at its top-level commas.
function splitList(text) {
  const items = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i += 1) {
    const ch = text[i];
    if (ch === "'" || ch === "\"") {
      i += 1;
      while (i < text.length && text[i] !== ch) i += text[i] === "\\" ? 2 : 1;
    } else if ("([{".includes(ch)) depth += 1;
    else if (")]}".includes(ch)) depth -= 1;
    else if (ch === "," && depth === 0) { items.push(text.slice(start, i).trim()); start = i + 1; }
  }
  items.push(text.slice(start).trim());
  return items.filter(s => s.length > 0);
}

function numberOrParameter(text, parameters, clause) {
  const t = text.trim();
  let value;
  if (/^\d+$/.test(t)) value = parseInt(t, 10);
  else if (/^@\w+$/.test(t)) value = ((parameters || []).find(p => p.name === t) || {}).value;
  if (typeof value !== "number" || value < 0 || !Number.isInteger(value)) throw new BadQuery(`The ${clause} value '${t}' must be a non-negative integer.`);
  return value;
}

/// The parts of a query: clause texts, DISTINCT / OFFSET / LIMIT (which the engine cannot parse),
/// and `engineSql`, the query without them that the engine runs.
function clausesOf(sql, parameters) {
  const text = sql.trim();
  const words = topLevelWords(text);
  if (!words.length || words[0].word !== "SELECT" || words[0].start !== 0) throw new BadQuery("Syntax error: a query starts with SELECT.");
  let w = 1;
  // DISTINCT, TOP and VALUE count only right after SELECT (an alias may be named `top`).
  const next = (word) => {
    const candidate = words[w];
    if (!candidate || candidate.word !== word || text.slice(words[w - 1].end, candidate.start).trim() !== "" &&
      !(words[w - 1].word === "TOP" && /^\s*(\d+|@\w+)\s*$/.test(text.slice(words[w - 1].end, candidate.start)))) return null;
    w += 1;
    return candidate;
  };
  const distinct = Boolean(next("DISTINCT"));
  let top = null;
  let selectStart = (words[w - 1]).end;
  const topWord = next("TOP");
  if (topWord) {
    const m = /^\s*(\d+|@\w+)/.exec(text.slice(topWord.end));
    if (!m) throw new BadQuery("Syntax error near TOP.");
    top = numberOrParameter(m[1], parameters, "TOP");
    selectStart = topWord.end + m[0].length;
  }
  const valueWord = next("VALUE");
  if (valueWord) selectStart = valueWord.end;
  const find = (word, follower) => words.findIndex((x, i) => i >= w && x.word === word && (!follower || (words[i + 1] && words[i + 1].word === follower)));
  const at = {
    from: find("FROM"), where: find("WHERE"), group: find("GROUP", "BY"), order: find("ORDER", "BY"), offset: find("OFFSET"), limit: find("LIMIT")
  };
  const starts = Object.values(at).filter(i => i >= 0).map(i => words[i].start);
  const clauseEnd = (start) => Math.min(text.length, ...starts.filter(s => s > start));
  const clause = (key, skipWords) => {
    if (at[key] < 0) return null;
    const begin = words[at[key] + skipWords - 1].end;
    return text.slice(begin, clauseEnd(words[at[key]].start)).trim();
  };
  if (at.group >= 0) throw new BadQuery("GROUP BY is not supported by the local Cosmos DB server (see tests/LocalCosmos/README.md).");
  const parts = {
    distinct,
    top,
    value: Boolean(valueWord),
    select: text.slice(selectStart, starts.length ? Math.min(...starts) : text.length).trim(),
    from: clause("from", 1),
    where: clause("where", 1),
    orderBy: clause("order", 2),
    offset: at.offset >= 0 ? numberOrParameter(clause("offset", 1), parameters, "OFFSET") : null,
    limit: at.limit >= 0 ? numberOrParameter(clause("limit", 1), parameters, "LIMIT") : null
  };
  if ((parts.offset === null) !== (parts.limit === null)) throw new BadQuery("Syntax error: OFFSET and LIMIT go together.");
  parts.materialized = parts.distinct || parts.offset !== null;
  // Without DISTINCT, OFFSET or LIMIT the engine runs the text as it is.
  parts.engineSql = parts.materialized ? buildSql({ ...parts, distinct: false, top: parts.distinct ? null : parts.top }) : text;
  return parts;
}

function buildSql({ distinct, top, value, select, from, where, orderBy }) {
  return `SELECT ${distinct ? "DISTINCT " : ""}${top !== null && top !== undefined ? `TOP ${top} ` : ""}${value ? "VALUE " : ""}${select}` +
    `${from ? ` FROM ${from}` : ""}${where ? ` WHERE ${where}` : ""}${orderBy ? ` ORDER BY ${orderBy}` : ""}`;
}

// ---------------------------------------------------------------------------------------------
// Aggregates
// ---------------------------------------------------------------------------------------------
const AGGREGATES = { COUNT: "Count", SUM: "Sum", MIN: "Min", MAX: "Max", AVG: "Average" };
const SUBQUERIES = new Set(["scalar_subquery_expression", "exists_subquery_expression", "array_subquery_expression"]);

const isAggregateCall = (node) => Boolean(node && node.type === "scalar_function_expression" && !node.udf &&
  Object.prototype.hasOwnProperty.call(AGGREGATES, node.name.name.toUpperCase()));

/// The aggregate calls of an expression, outside subqueries (they aggregate on their own).
function aggregateCalls(node, found = []) {
  if (!node || typeof node !== "object") return found;
  if (Array.isArray(node)) { node.forEach(n => aggregateCalls(n, found)); return found; }
  if (SUBQUERIES.has(node.type)) return found;
  if (isAggregateCall(node)) { found.push(node); return found; }
  Object.keys(node).forEach(k => aggregateCalls(node[k], found));
  return found;
}

/// Whether the engine can run the SELECT's aggregates itself: it only sees an aggregate that is
/// the whole VALUE or a whole item of the select list.
function engineAggregates(select) {
  if (select.value) return isAggregateCall(select.value) || aggregateCalls(select.value).length === 0;
  if (select.properties) return select.properties.properties.every(p => isAggregateCall(p.property) || aggregateCalls(p.property).length === 0);
  return true;
}

function constantNode(value) {
  if (value === undefined) return { type: "undefined_constant" };
  if (value === null) return { type: "null_constant" };
  if (typeof value === "number") return { type: "number_constant", value };
  if (typeof value === "boolean") return { type: "boolean_constant", value };
  if (typeof value === "string") return { type: "string_constant", value };
  throw new Error(`aggregate value of type ${typeof value}`);
}

function substitute(node, replacements) {
  if (replacements.has(node)) return replacements.get(node);
  if (!node || typeof node !== "object") return node;
  if (Array.isArray(node)) return node.map(n => substitute(n, replacements));
  const copy = {};
  Object.keys(node).forEach(k => { copy[k] = substitute(node[k], replacements); });
  return copy;
}

// Fix 8 — aggregates inside a projection. The engine aggregates only when an aggregate is the
// whole VALUE or a whole select item, but the rewritten queries of a plan wrap them, e.g.
// `SELECT VALUE [{"item": COUNT(1)}] FROM c`, and the service computes any aggregate of the
// projection over the filtered documents. Each aggregate call is evaluated on its own by the
// engine (`SELECT VALUE COUNT(1) FROM c WHERE …`), then the projection with the results in place.
function runNestedAggregates(sql, ast, documents, options) {
  const body = ast.body;
  const calls = aggregateCalls(body.select);
  const replacements = new Map();
  calls.forEach((call, i) => {
    const single = { type: "sql", body: { ...body, top: null, orderBy: null, select: { type: "select_specification", value: call } } };
    const value = queryOfAst(`${sql}\u0000aggregate ${i}`, single).exec(documents, { ...options, maxItemCount: null, continuation: null }).result[0];
    replacements.set(call, constantNode(value));
  });
  const projection = { type: "sql", body: { type: "select_query", top: null, select: substitute(body.select, replacements), from: null, where: null, orderBy: null } };
  return { result: queryOfAst(JSON.stringify(projection), projection).exec([], { parameters: options.parameters }).result, continuation: null };
}

// ---------------------------------------------------------------------------------------------
// Execution over the documents of a request's scope (a range, a part of it, or a partition key)
// ---------------------------------------------------------------------------------------------

// Fix 1d — a page of a streamable query (no ORDER BY, aggregate, TOP, DISTINCT, GROUP BY) can
// only hold documents at or after the continuation's `_rid`: run it over a window that starts
// there and widens until it fills a page or reaches the end. Pages then cost what they return,
// not the size of the container (stored documents differ in hidden class, so every pass of the
// generated code over the whole container cost ~15 ms at 20,000 documents).
const STREAMING_BLOCKERS = /\b(ORDER\s+BY|TOP|DISTINCT|GROUP\s+BY|OFFSET|COUNT|SUM|AVG|MIN|MAX)\b/i;

const MATERIALIZED_PREFIX = "+SKIP:";

/// Runs a query over a scope: `scope.rids` (the scope's `_rid`s, sorted) and
/// `scope.documents(from, to)` (its documents at those positions). Options as the engine's:
/// parameters, udf, maxItemCount, continuation ({ token }), compositeIndexes.
function executeQuery(scope, sql, options) {
  const parts = compiledQueries.get(`${sql}\u0000clauses ${JSON.stringify(options.parameters || [])}`, () => clausesOf(sql, options.parameters));
  const query = compileQuery(parts.engineSql);
  if (!engineAggregates(query.ast.body.select)) return runNestedAggregates(parts.engineSql, query.ast, scope.documents(0, Infinity), options);
  if (parts.materialized) return runMaterialized(scope, query, parts, options);
  const { maxItemCount, continuation } = options;
  if (!maxItemCount || maxItemCount < 0 || STREAMING_BLOCKERS.test(sql)) {
    return query.exec(scope.documents(0, Infinity), options);
  }
  let from = 0;
  if (continuation && continuation.token) {
    const { RID } = continuationTokens.decode(continuation.token);
    from = lowerBound(scope.rids, RID);
  }
  for (let width = Math.max(4 * maxItemCount, 1000); ; width *= 2) {
    const to = from + width;
    const result = query.exec(scope.documents(from, to), options);
    if (result.continuation || to >= scope.rids.length) return result;
  }
}

// Fix 9 — DISTINCT, OFFSET … LIMIT (and TOP beside DISTINCT, which applies after it): the
// engine runs the query without them, the whole answer is computed, then made distinct (by value:
// objects compare regardless of property order), skipped and limited. Pages of it are served by
// position, with a continuation that says how many results were already returned.
function runMaterialized(scope, query, parts, options) {
  let rows = query.exec(scope.documents(0, Infinity), { ...options, maxItemCount: null, continuation: null }).result;
  if (parts.distinct) {
    const seen = new Set();
    rows = rows.filter(r => { const k = stableJson(r); if (seen.has(k)) return false; seen.add(k); return true; });
    if (parts.top !== null) rows = rows.slice(0, parts.top);
  }
  if (parts.offset !== null) rows = rows.slice(parts.offset, parts.offset + parts.limit);
  const token = options.continuation && options.continuation.token;
  const skip = token && token.startsWith(MATERIALIZED_PREFIX) ? parseInt(token.slice(MATERIALIZED_PREFIX.length), 10) || 0 : 0;
  const size = options.maxItemCount > 0 ? options.maxItemCount : rows.length;
  const page = rows.slice(skip, skip + size);
  const more = skip + size < rows.length;
  return { result: page, continuation: more ? { token: `${MATERIALIZED_PREFIX}${skip + size}`, range: { min: "", max: "FF" } } : null };
}

function stableJson(value) {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(",")}]`;
  if (value && typeof value === "object") return `{${Object.keys(value).sort().map(k => `${JSON.stringify(k)}:${stableJson(value[k])}`).join(",")}}`;
  return JSON.stringify(value);
}

function lowerBound(sorted, value) {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid] < value) lo = mid + 1; else hi = mid;
  }
  return lo;
}

/// Evaluates a condition (a patch's filter predicate, `FROM c WHERE …`) against one document.
function matchesCondition(condition, doc) {
  const clause = /^\s*select\b/i.test(condition) ? condition : `SELECT VALUE 1 ${condition}`;
  return compileQuery(clause).exec([doc], {}).result.length > 0;
}

// ---------------------------------------------------------------------------------------------
// Query plans (the gateway's answer to `x-ms-cosmos-is-query-plan-request`)
// ---------------------------------------------------------------------------------------------
const ORDER_BY_FILTER = "{documentdb-formattableorderbyquery-filter}";

/// The name a select item gets in the result (its alias, else its last property name, else $n).
function itemNames(select) {
  let n = 0;
  return select.properties.properties.map(({ property, alias }) => {
    if (alias) return alias.name;
    if (property.type === "scalar_member_expression" && !property.computed) return property.property.name;
    if (property.type === "scalar_member_expression" && property.property.type === "string_constant") return property.property.value;
    if (property.type === "identifier") return property.name;
    n += 1;
    return `$${n}`;
  });
}

function aggregateArgument(itemText) {
  const open = itemText.indexOf("(");
  return itemText.slice(open + 1, itemText.lastIndexOf(")")).trim();
}

/// What one range answers toward an aggregate: MIN and MAX also count (a range with no value
/// must not make the whole result undefined), AVG returns its sum and count.
function partialAggregate(op, argument) {
  switch (op) {
    case "MIN": return `{"min": MIN(${argument}), "count": COUNT(${argument})}`;
    case "MAX": return `{"max": MAX(${argument}), "count": COUNT(${argument})}`;
    case "AVG": return `{"sum": SUM(${argument}), "count": COUNT(${argument})}`;
    default: return `${op}(${argument})`;
  }
}

/// The select list's items: the name each gets in a result row and its expression's text.
function selectItems(parts, select) {
  const names = itemNames(select);
  const texts = splitList(parts.select);
  if (texts.length !== names.length) throw new BadQuery("Syntax error in the select list.");
  return select.properties.properties.map(({ alias }, i) => ({
    name: names[i],
    text: alias ? texts[i].replace(new RegExp(`\\s+(AS\\s+)?${alias.name}\\s*$`, "i"), "").trim() : texts[i]
  }));
}

/// The plan of a query (PartitionedQueryExecutionInfo), or BadQuery for what the service rejects.
function queryPlan(sql, parameters) {
  const parts = clausesOf(sql, parameters);
  let ast;
  try {
    const query = compileQuery(parts.engineSql);
    if (!query.code) throw new BadQuery("Syntax error."); // generating the code validates what parsing cannot
    ast = query.ast;
  } catch (err) {
    if (err instanceof QuerySyntaxError) throw new BadQuery(`Syntax error: ${err.message}`);
    if (err.badRequest) throw err;
    throw new BadQuery(err.message);
  }
  const body = ast.body;
  const select = body.select;
  const from = parts.from ? ` FROM ${parts.from}` : "";
  const where = parts.where ? ` WHERE ${parts.where}` : "";
  const info = {
    distinctType: "None", top: null, offset: null, limit: null,
    orderBy: [], orderByExpressions: [], groupByExpressions: [], groupByAliases: [],
    aggregates: [], groupByAliasToAggregateType: {}, rewrittenQuery: "",
    hasSelectValue: parts.value, dCountInfo: null, hasNonStreamingOrderBy: false
  };

  const valueAggregate = select.value && isAggregateCall(select.value);
  const listItems = select.properties ? select.properties.properties : [];
  const listAggregates = listItems.filter(p => isAggregateCall(p.property)).length;
  if (listAggregates > 0 && listAggregates < listItems.length) {
    throw new BadQuery("Property reference in the select list is invalid because it is not contained in an aggregate function or the GROUP BY clause.");
  }
  if (!engineAggregates(select)) throw new BadQuery("Aggregates inside an expression of the select list are not supported by the local Cosmos DB server.");

  if (valueAggregate) {
    const op = select.value.name.name.toUpperCase();
    info.aggregates = [AGGREGATES[op]];
    info.rewrittenQuery = `SELECT VALUE [{"item": ${partialAggregate(op, aggregateArgument(parts.select))}}]${from}${where}`;
  } else if (listAggregates > 0) {
    const items = selectItems(parts, select);
    info.groupByAliases = items.map(item => item.name);
    const payload = items.map(({ name, text }, i) => {
      const op = listItems[i].property.name.name.toUpperCase();
      info.groupByAliasToAggregateType[name] = AGGREGATES[op];
      return `${JSON.stringify(name)}: {"item": ${partialAggregate(op, aggregateArgument(text))}}`;
    });
    info.rewrittenQuery = `SELECT {${payload.join(", ")}} AS payload${from}${where}`;
  } else {
    info.top = parts.top;
    info.offset = parts.offset;
    info.limit = parts.limit;
    if (parts.distinct) info.distinctType = body.orderBy ? "Ordered" : "Unordered";
    // Each range returns enough for the merged stream: TOP n, or OFFSET + LIMIT; with DISTINCT
    // every distinct row (a range's first n rows may repeat each other).
    const perRange = parts.distinct ? null : (parts.top !== null ? parts.top : (parts.limit !== null ? parts.offset + parts.limit : null));
    if (body.orderBy) {
      const keys = splitList(parts.orderBy).map(k => k.replace(/\s+(ASC|DESC)\s*$/i, "").trim());
      info.orderByExpressions = keys;
      info.orderBy = body.orderBy.expressions.map(e => (e.order === "DESC" ? "Descending" : "Ascending"));
      const root = rootAlias(body);
      let payload;
      if (select["*"]) payload = root;
      else if (parts.value) payload = parts.select;
      else payload = `{${selectItems(parts, select).map(({ name, text }) => `${JSON.stringify(name)}: ${text}`).join(", ")}}`;
      const filter = parts.where ? ` WHERE (${parts.where}) AND (${ORDER_BY_FILTER})` : ` WHERE ${ORDER_BY_FILTER}`;
      info.rewrittenQuery = `SELECT ${perRange !== null ? `TOP ${perRange} ` : ""}${root}._rid, [${keys.map(k => `{"item": ${k}}`).join(", ")}] AS orderByItems, ${payload} AS payload` +
        `${from}${filter} ORDER BY ${parts.orderBy}`;
    } else if (parts.distinct || perRange !== null) {
      info.rewrittenQuery = buildSql({ ...parts, top: perRange, orderBy: null });
    }
  }
  return {
    partitionedQueryExecutionInfoVersion: 2,
    queryInfo: info,
    queryRanges: [{ min: "", max: "FF", isMinInclusive: true, isMaxInclusive: false }]
  };
}

function rootAlias(body) {
  const source = body.from.source;
  if (source.alias) return source.alias.name;
  let e = source.expression;
  while (e && e.type !== "identifier") e = e.expression || e.object;
  return e ? e.name : "c";
}

module.exports = { BadQuery, QuerySyntaxError, executeQuery, matchesCondition, queryPlan };
