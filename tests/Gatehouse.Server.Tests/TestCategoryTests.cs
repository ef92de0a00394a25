using System.Reflection;

namespace Gatehouse.Server.Tests;

/// <summary>
/// The suite's own rules, which nothing else would catch: a test class without a category silently drops out of
/// <c>--filter Category=fast</c>, and a [Fact] in a PostgreSQL class fails instead of being skipped where PostgreSQL
/// is not installed. xunit does not give a class the traits of its base class, so each concrete class names its own.
/// </summary>
[Trait(Category.Name, Category.Fast)]
public sealed class TestCategoryTests
{
    private static readonly Type[] TestClasses = [.. typeof(TestCategoryTests).Assembly.GetTypes()
        .Where(t => t is { IsClass: true, IsAbstract: false } && t.GetMethods().Any(IsTest))];

    [Fact]
    public void Every_test_class_names_its_categories_and_a_fast_one_is_nothing_else()
    {
        Assert.NotEmpty(TestClasses);
        Assert.All(TestClasses, type =>
        {
            var categories = Categories(type);
            Assert.True(categories.Count > 0, $"{type.Name} has no [Trait(Category.Name, …)]");
            Assert.All(categories, c => Assert.Contains(c, Category.All));
            Assert.False(categories.Contains(Category.Fast) && categories.Count > 1, $"{type.Name} is fast and {string.Join(", ", categories)}");
        });
    }

    [Fact]
    public void Every_test_of_a_postgres_class_can_report_itself_skipped()
    {
        var postgres = TestClasses.Where(t => Categories(t).Contains(Category.Postgres)).ToList();
        Assert.NotEmpty(postgres);
        Assert.All(postgres.SelectMany(t => t.GetMethods().Where(IsTest).Select(m => (Type: t, Method: m))), test =>
            Assert.True(test.Method.GetCustomAttributes(inherit: true).Any(a => a is SkippableFactAttribute or SkippableTheoryAttribute),
                $"{test.Type.Name}.{test.Method.Name} is a [Fact] or [Theory]: a [SkippableFact] or [SkippableTheory] is skipped where PostgreSQL is missing"));
    }

    private static bool IsTest(MethodInfo method) => method.GetCustomAttributes<FactAttribute>(inherit: true).Any();

    private static List<string> Categories(Type type) => [.. type.GetCustomAttributesData()
        .Where(a => a.AttributeType == typeof(TraitAttribute) && (string?)a.ConstructorArguments[0].Value == Category.Name)
        .Select(a => (string)a.ConstructorArguments[1].Value!)];
}
