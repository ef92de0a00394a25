using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Gatehouse.Server.Tests.Client;

namespace Gatehouse.Server.Tests;

/// <summary>
/// deploy/prometheus's alert rules as Prometheus reads them (promtool, Debian's prometheus package, which test.sh
/// installs): they load, each alert fires on synthetic series past its threshold and stays quiet below it, and the
/// dashboard's expressions parse as PromQL. Which names they use is <see cref="GovernanceMetricsTests"/>' to check.
/// </summary>
[Trait(Category.Name, Category.Slow)]
public sealed partial class AlertRuleTests : IDisposable
{
    private const string Promtool = "/usr/bin/promtool";
    private readonly string _work = Directory.CreateTempSubdirectory("gatehouse-alerts").FullName;

    public void Dispose()
    {
        GatehouseServer.DeleteDataDirectory(_work);
        GC.SuppressFinalize(this);
    }

    [SkippableFact]
    public async Task The_alert_rules_load_and_their_unit_tests_fire_each_alert_past_its_threshold_only()
    {
        Skip.If(!File.Exists(Promtool), "promtool is not installed (Debian: the prometheus package).");
        var folder = Path.GetDirectoryName(Monitoring.AlertRulesPath)!;

        var (checkExit, checkOutput) = await Processes.RunAsync(Promtool, ["check", "rules", Monitoring.AlertRulesPath], folder);
        Assert.True(checkExit == 0, $"promtool check rules ({checkExit}):\n{checkOutput}");
        Assert.Contains("SUCCESS: 8 rules found", checkOutput, StringComparison.Ordinal);
        var (testExit, testOutput) = await Processes.RunAsync(Promtool, ["test", "rules", Monitoring.AlertTestsPath], folder);
        Assert.True(testExit == 0, $"promtool test rules ({testExit}):\n{testOutput}");
        Assert.Contains("SUCCESS", testOutput, StringComparison.Ordinal);

        // Each alert has a case in which it fires.
        var tests = await File.ReadAllTextAsync(Monitoring.AlertTestsPath);
        var firing = FiringCase().Matches(tests).Select(m => m.Groups["alert"].Value).ToHashSet(StringComparer.Ordinal);
        foreach (var (_, alert, _) in Monitoring.Rules(await File.ReadAllTextAsync(Monitoring.AlertRulesPath)).Where(r => r.Kind == "alert"))
            Assert.True(firing.Contains(alert), $"{alert} has no unit test in which it fires");

        // The control: the same unit tests against rules whose thresholds moved must fail, naming the alerts.
        var rules = await File.ReadAllTextAsync(Monitoring.AlertRulesPath);
        var moved = rules.Replace("> 365 * 86400", "> 400 * 86400", StringComparison.Ordinal).Replace("> 0.02", "> 0.05", StringComparison.Ordinal);
        Assert.NotEqual(rules, moved);
        await File.WriteAllTextAsync(Path.Combine(_work, Path.GetFileName(Monitoring.AlertRulesPath)), moved);
        File.Copy(Monitoring.AlertTestsPath, Path.Combine(_work, Path.GetFileName(Monitoring.AlertTestsPath)));
        var (movedExit, movedOutput) = await Processes.RunAsync(Promtool, ["test", "rules", Path.GetFileName(Monitoring.AlertTestsPath)], _work);
        Assert.NotEqual(0, movedExit);
        Assert.Contains("alertname: GatehouseServerKeyTooOld", movedOutput, StringComparison.Ordinal);
        Assert.Contains("alertname: GatehouseAuthTokenFailureRateHigh", movedOutput, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task Every_expression_of_the_dashboard_parses_as_PromQL()
    {
        Skip.If(!File.Exists(Promtool), "promtool is not installed (Debian: the prometheus package).");
        var expressions = Monitoring.DashboardExpressions(JsonNode.Parse(await File.ReadAllTextAsync(Monitoring.DashboardPath))!);
        Assert.True(expressions.Count >= 10, $"only {expressions.Count} expressions found");

        // Grafana's range variables become durations; promtool parses each expression as a recording rule's. JSON's
        // string quoting is YAML's too.
        var rules = string.Join('\n', expressions.Select((e, i) =>
            $"      - record: dashboard:expression_{i}\n        expr: {System.Text.Json.JsonSerializer.Serialize(e.Replace("$__rate_interval", "5m", StringComparison.Ordinal).Replace("$__range", "1d", StringComparison.Ordinal))}"));
        var file = Path.Combine(_work, "dashboard-rules.yml");
        await File.WriteAllTextAsync(file, $"groups:\n  - name: dashboard\n    rules:\n{rules}\n");
        var (exit, output) = await Processes.RunAsync(Promtool, ["check", "rules", file], _work);
        Assert.True(exit == 0, $"promtool check rules on the dashboard's expressions ({exit}):\n{output}");
        Assert.Contains($"SUCCESS: {expressions.Count} rules found", output, StringComparison.Ordinal);
    }

    /// <summary>An alert_rule_test whose exp_alerts is not empty.</summary>
    [GeneratedRegex("""alertname: (?<alert>\w+)\s*\n\s*exp_alerts:\s*\n\s*- exp_labels:""")]
    private static partial Regex FiringCase();
}
