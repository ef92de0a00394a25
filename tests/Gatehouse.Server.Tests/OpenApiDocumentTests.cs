using System.Text.Json.Nodes;
using Gatehouse.Server.Tests.Client;
using Gatehouse.Server.Tokens;

namespace Gatehouse.Server.Tests;

/// <summary>
/// The OpenAPI document as a customer's tools take it from a running server: Redocly CLI (pinned in tests/openapi)
/// lints it with its recommended rules, and NSwag (a local tool of the repository) generates a C# client from it that
/// builds in a project of its own and calls the server with each credential the document declares.
/// </summary>
[Trait(Category.Name, Category.Slow)]
public sealed class OpenApiDocumentTests(SqliteServer server) : IClassFixture<SqliteServer>
{
    private static readonly string LintFolder = Repository.PathOf("tests", "openapi");

    [Fact]
    public async Task The_served_document_passes_redocly_lint_with_the_recommended_rules()
    {
        Assert.True(File.Exists(Path.Combine(LintFolder, "node_modules", "@redocly", "cli", "package.json")),
            "Redocly CLI is not installed: run `npm ci --prefix tests/openapi` (./test.sh does).");
        var work = Directory.CreateTempSubdirectory("gatehouse-openapi-lint").FullName;
        try
        {
            var document = Path.Combine(work, "openapi.json");
            await File.WriteAllTextAsync(document, await server.Http.GetStringAsync("/openapi/v1.json"));

            var (exit, output, error) = await Processes.RunApartAsync("npx",
                ["--no-install", "redocly", "lint", document, "--config", Path.Combine(LintFolder, "redocly.yaml"), "--format", "json"], LintFolder,
                new Dictionary<string, string> { ["REDOCLY_TELEMETRY"] = "off", ["REDOCLY_SUPPRESS_UPDATE_NOTICE"] = "true" });

            Assert.True(exit == 0, $"redocly lint exited {exit}:\n{output}\n{error}");
            var problems = JsonNode.Parse(output)!["problems"]!.AsArray()
                .Select(p => (Severity: p!["severity"]!.GetValue<string>(), Rule: p["ruleId"]!.GetValue<string>(),
                    Where: p["location"]![0]!["pointer"]!.GetValue<string>()))
                .ToList();
            Assert.DoesNotContain(problems, p => p.Severity == "error");
            // The one warning left: the public reads of keys and metadata answer no 4xx, and the document says none.
            var warnings = problems.Where(p => !(p.Rule == "operation-4xx-response" && p.Where.StartsWith("#/paths/~1.well-known~1", StringComparison.Ordinal)));
            Assert.True(!warnings.Any(), string.Join('\n', warnings));
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    [Fact]
    public async Task A_client_nswag_generates_from_the_served_document_builds_alone_and_logs_in_mints_reads_the_user_and_bans()
    {
        var network = await server.CreateNetworkAsync(secureMode: true);
        var serverKey = await server.GenerateServerKeyAsync(network);
        var (adminToken, refused) = await server.GenerateAdminTokenAsync(await server.CreateAdminAsync(network), network);
        Assert.Null(refused);
        var work = Directory.CreateTempSubdirectory("gatehouse-openapi-client").FullName;
        try
        {
            var document = Path.Combine(work, "openapi.json");
            await File.WriteAllTextAsync(document, await server.Http.GetStringAsync("/openapi/v1.json"));
            foreach (var file in Directory.GetFiles(Repository.PathOf("tests", "openapi", "client")))
                File.Copy(file, Path.Combine(work, Path.GetFileName(file)));

            var generate = await Processes.RunAsync("dotnet", ["nswag", "openapi2csclient", $"/input:{document}", $"/output:{Path.Combine(work, "GatehouseClient.cs")}",
                "/namespace:Gatehouse.Generated", "/className:GatehouseClient", "/jsonLibrary:SystemTextJson", "/generateClientInterfaces:false",
                "/operationGenerationMode:SingleClientFromOperationId"], Repository.Root);
            Assert.True(generate.Exit == 0, $"NSwag did not generate the client (`dotnet tool restore` installs it; ./test.sh does):\n{generate.Output}");
            var build = await Processes.RunAsync("dotnet", ["build", "-c", "Release", "-nologo", "-v", "quiet", "-o", Path.Combine(work, "out")], work);
            Assert.True(build.Exit == 0, $"the generated client did not build:\n{build.Output}");

            var run = await Processes.RunAsync("dotnet", [Path.Combine(work, "out", "GeneratedClientSmoke.dll"), network.ApiKey, serverKey, adminToken!, "generated-alice"], work);

            Assert.True(run.Exit == 0, run.Output);
            var issuer = server.Services.GetRequiredService<TokenIssuer>().Current;
            Assert.Equal(
                [
                    "minted: expires in the future=True",
                    "session: signed-in generated-alice",
                    "me: generated-alice banned=False",
                    "introspected: active=True sub=generated-alice",
                    $"metadata: {issuer}/.well-known/jwks.json",
                    "ban: success=True",
                    "me after the ban: 403 400312 The user is globally banned.",
                ],
                run.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }
}
