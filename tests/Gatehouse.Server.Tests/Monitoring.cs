using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Gatehouse.Server.Tests;

/// <summary>One line of a Prometheus scrape: the name as served, its labels and its value.</summary>
public sealed record Sample(string Name, IReadOnlyDictionary<string, string> Labels, double Value)
{
    public bool Has(string label, string value) => Labels.TryGetValue(label, out var found) && found == value;
}

/// <summary>
/// What the monitoring files in deploy/ query, and what a server's /metrics serves: read here with no Prometheus
/// library, so that a test compares the names the files use with the names a real scrape holds.
/// </summary>
public static partial class Monitoring
{
    public static string AlertRulesPath { get; } = Repository.PathOf("deploy", "prometheus", "gatehouse-alerts.yml");
    public static string AlertTestsPath { get; } = Repository.PathOf("deploy", "prometheus", "gatehouse-alerts.test.yml");
    public static string DashboardPath { get; } = Repository.PathOf("deploy", "grafana", "gatehouse-dashboard.json");

    public static List<Sample> ParseScrape(string text)
    {
        var samples = new List<Sample>();
        foreach (var line in text.Split('\n'))
        {
            if (line.Length == 0 || line[0] == '#')
                continue;
            var match = SampleLine().Match(line);
            Assert.True(match.Success, $"not a sample line: {line}");
            var labels = LabelPair().Matches(match.Groups["labels"].Value)
                .ToDictionary(m => m.Groups["name"].Value, m => Regex.Unescape(m.Groups["value"].Value), StringComparer.Ordinal);
            samples.Add(new Sample(match.Groups["name"].Value, labels, ParseValue(match.Groups["value"].Value)));
        }
        return samples;
    }

    private static double ParseValue(string value) => value switch
    {
        "+Inf" => double.PositiveInfinity,
        "-Inf" => double.NegativeInfinity,
        _ => double.Parse(value, NumberStyles.Float, CultureInfo.InvariantCulture),
    };

    /// <summary>
    /// The metric names a PromQL expression selects: what is left once strings, label matchers, grouping clauses,
    /// ranges, function calls, keywords and numbers are set aside. Grafana's variables sit in strings and ranges.
    /// </summary>
    public static IReadOnlySet<string> MetricNames(string promql)
    {
        var text = QuotedString().Replace(promql, "\"\"");
        text = LabelMatchers().Replace(text, " ");
        text = Grouping().Replace(text, " ");
        text = Range().Replace(text, " ");
        return Identifier().Matches(text).Select(m => m.Value).Where(name => !Keywords.Contains(name)).ToHashSet(StringComparer.Ordinal);
    }

    private static readonly HashSet<string> Keywords = new(StringComparer.OrdinalIgnoreCase)
    {
        "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset", "inf", "nan",
    };

    /// <summary>The rules file's recording and alerting rules, each with its expression (inline or a block scalar).</summary>
    public static List<(string Kind, string Name, string Expr)> Rules(string yaml)
    {
        var rules = new List<(string, string, string)>();
        var lines = yaml.Split('\n');
        string? kind = null, name = null;
        for (var i = 0; i < lines.Length; i++)
        {
            if (RuleHead().Match(lines[i]) is { Success: true } head)
            {
                (kind, name) = (head.Groups["kind"].Value, head.Groups["name"].Value.Trim());
                continue;
            }
            if (ExprLine().Match(lines[i]) is not { Success: true } expr)
                continue;
            var value = expr.Groups["value"].Value.Trim();
            if (value is "|" or ">" or "|-" or ">-")
            {
                var indent = expr.Groups["indent"].Length;
                var block = new List<string>();
                while (i + 1 < lines.Length && (lines[i + 1].Trim().Length == 0 || lines[i + 1].Length - lines[i + 1].TrimStart().Length > indent))
                    block.Add(lines[++i].Trim());
                value = string.Join(' ', block).Trim();
            }
            Assert.True(kind is not null && name is not null, $"an expression outside a rule: {value}");
            rules.Add((kind!, name!, value));
            (kind, name) = (null, null);
        }
        return rules;
    }

    /// <summary>Every PromQL expression of the dashboard: its panels' targets (rows' panels too) and its variables' queries.</summary>
    public static List<string> DashboardExpressions(JsonNode dashboard)
    {
        var expressions = new List<string>();
        foreach (var panel in Panels(dashboard["panels"]!.AsArray()))
        {
            if (panel["targets"] is JsonArray targets)
                expressions.AddRange(targets.Select(t => t!["expr"]!.GetValue<string>()));
        }
        foreach (var variable in dashboard["templating"]!["list"]!.AsArray())
        {
            if (variable!["type"]!.GetValue<string>() != "query")
                continue;
            var query = variable["query"] is JsonObject editor ? editor["query"]!.GetValue<string>() : variable["query"]!.GetValue<string>();
            // label_values(selector, label): the selector is PromQL, the label is not.
            var labelValues = LabelValues().Match(query);
            expressions.Add(labelValues.Success ? labelValues.Groups["selector"].Value : query);
        }
        return expressions;
    }

    public static IEnumerable<JsonNode> Panels(JsonArray panels)
    {
        foreach (var panel in panels)
        {
            yield return panel!;
            if (panel!["panels"] is JsonArray nested)
            {
                foreach (var inner in Panels(nested))
                    yield return inner;
            }
        }
    }

    [GeneratedRegex("""^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?<labels>.*)\})? (?<value>\S+)( \d+)?$""")]
    private static partial Regex SampleLine();

    [GeneratedRegex("""(?<name>[a-zA-Z_][a-zA-Z0-9_]*)="(?<value>(?:[^"\\]|\\.)*)",?""")]
    private static partial Regex LabelPair();

    [GeneratedRegex("""("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)""")]
    private static partial Regex QuotedString();

    [GeneratedRegex("""\{[^}]*\}""")]
    private static partial Regex LabelMatchers();

    [GeneratedRegex("""\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)""", RegexOptions.IgnoreCase)]
    private static partial Regex Grouping();

    [GeneratedRegex("""\[[^\]]*\]""")]
    private static partial Regex Range();

    [GeneratedRegex("""(?<![\w.$])[a-zA-Z_:][a-zA-Z0-9_:]*\b(?!\s*\()""")]
    private static partial Regex Identifier();

    [GeneratedRegex("""^\s*- (?<kind>record|alert):\s*(?<name>\S+)\s*$""")]
    private static partial Regex RuleHead();

    [GeneratedRegex("""^(?<indent>\s*)expr:\s*(?<value>.*)$""")]
    private static partial Regex ExprLine();

    [GeneratedRegex("""^\s*label_values\((?<selector>.+),\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)\s*$""")]
    private static partial Regex LabelValues();
}
