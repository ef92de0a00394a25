using System.Text.RegularExpressions;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace Gatehouse.Server.Tests.Client;

/// <summary>Every C# block of docs/sdk.md compiles, as a program of its own, against the SDK as built.</summary>
[Trait(Category.Name, Category.Slow)]
public sealed partial class SdkDocTests
{
    private static readonly string[] ImplicitUsings =
        ["System", "System.Collections.Generic", "System.IO", "System.Linq", "System.Net.Http", "System.Threading", "System.Threading.Tasks"];

    public static TheoryData<int> Blocks() => new(Enumerable.Range(0, CodeBlocks().Count));

    [Fact]
    public void The_guide_has_its_examples() => Assert.True(CodeBlocks().Count >= 8, "docs/sdk.md lost its C# examples");

    [Theory]
    [MemberData(nameof(Blocks))]
    public void Each_csharp_block_of_docs_sdk_md_compiles(int block)
    {
        var code = CodeBlocks()[block];
        var usings = string.Concat(ImplicitUsings.Select(u => $"global using {u};\n"));
        var compilation = CSharpCompilation.Create($"SdkDocBlock{block}",
            [
                CSharpSyntaxTree.ParseText(usings, new CSharpParseOptions(LanguageVersion.Latest)),
                CSharpSyntaxTree.ParseText(code, new CSharpParseOptions(LanguageVersion.Latest)),
            ],
            References(),
            new CSharpCompilationOptions(OutputKind.ConsoleApplication, nullableContextOptions: NullableContextOptions.Enable));

        var problems = compilation.GetDiagnostics().Where(d => d.Severity >= DiagnosticSeverity.Warning).ToArray();

        Assert.True(problems.Length == 0, $"block {block} of docs/sdk.md:\n{code}\n{string.Join('\n', problems.Select(p => p.ToString()))}");
    }

    private static List<string> CodeBlocks() =>
        CsharpBlockRegex().Matches(File.ReadAllText(Repository.PathOf("docs", "sdk.md"))).Select(m => m.Groups[1].Value).ToList();

    /// <summary>What this test process runs on: the framework, ASP.NET Core, and the SDK with its dependencies.</summary>
    private static IEnumerable<MetadataReference> References() =>
        ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
            .Where(path => path.EndsWith(".dll", StringComparison.Ordinal))
            .Select(path => MetadataReference.CreateFromFile(path));

    [GeneratedRegex("```csharp\\n(.*?)```", RegexOptions.Singleline)]
    private static partial Regex CsharpBlockRegex();
}
