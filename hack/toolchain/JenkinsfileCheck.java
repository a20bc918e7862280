// Offline check of a declarative Jenkinsfile, used by hack/toolchain/validate-pipelines.
//
// 1. Parses the file with the Groovy parser Jenkins itself bundles (Groovy 2.4, from Maven
//    Central), so a syntax error is reported with its line and column as Jenkins would.
// 2. Walks the syntax tree with the rules of the Declarative Pipeline model
//    (pipeline-model-definition): one top-level `pipeline { }` with `agent` and `stages`; known
//    sections and directives, each at most once; every stage named by a unique string literal
//    with exactly one of steps/stages/parallel/matrix; `steps` holding step calls only (anything
//    else belongs in `script { }`); known `when` conditions, `post` conditions and `input`
//    fields; pipeline-only options not used on a stage.
// 3. With --require-stage NAME (repeatable), checks that those stages exist, in that order.
//
// It is not Jenkins' own validator (that runs only inside a Jenkins server, whose plugins are not
// on Maven Central): step names and their arguments are not checked.
//
// Usage: java -cp groovy.jar:<classes> JenkinsfileCheck [--require-stage NAME]... FILE...
// Exit: 0 all files valid, 1 a file is invalid, 2 usage error.

import java.io.File;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

import org.codehaus.groovy.ast.ASTNode;
import org.codehaus.groovy.ast.ModuleNode;
import org.codehaus.groovy.ast.expr.ArgumentListExpression;
import org.codehaus.groovy.ast.expr.BinaryExpression;
import org.codehaus.groovy.ast.expr.ClosureExpression;
import org.codehaus.groovy.ast.expr.ConstantExpression;
import org.codehaus.groovy.ast.expr.Expression;
import org.codehaus.groovy.ast.expr.MethodCallExpression;
import org.codehaus.groovy.ast.expr.TupleExpression;
import org.codehaus.groovy.ast.expr.VariableExpression;
import org.codehaus.groovy.ast.stmt.BlockStatement;
import org.codehaus.groovy.ast.stmt.ExpressionStatement;
import org.codehaus.groovy.ast.stmt.Statement;
import org.codehaus.groovy.control.CompilationUnit;
import org.codehaus.groovy.control.CompilerConfiguration;
import org.codehaus.groovy.control.MultipleCompilationErrorsException;
import org.codehaus.groovy.control.Phases;
import org.codehaus.groovy.control.SourceUnit;
import org.codehaus.groovy.control.messages.Message;
import org.codehaus.groovy.control.messages.SyntaxErrorMessage;
import org.codehaus.groovy.syntax.SyntaxException;

public final class JenkinsfileCheck {
    private static final Set<String> PIPELINE_SECTIONS = set(
            "agent", "environment", "libraries", "options", "parameters", "post", "stages", "tools", "triggers");
    private static final Set<String> STAGE_SECTIONS = set(
            "agent", "environment", "failFast", "input", "matrix", "options", "parallel", "post", "stages",
            "steps", "tools", "when");
    private static final Set<String> STAGE_BODIES = set("matrix", "parallel", "stages", "steps");
    private static final Set<String> AGENT_TYPES = set("any", "docker", "dockerfile", "kubernetes", "label", "node");
    private static final Set<String> WHEN_CONDITIONS = set(
            "allOf", "anyOf", "beforeAgent", "beforeInput", "beforeOptions", "branch", "buildingTag", "changeRequest",
            "changelog", "changeset", "environment", "equals", "expression", "not", "tag", "triggeredBy");
    private static final Set<String> POST_CONDITIONS = set(
            "aborted", "always", "changed", "cleanup", "failure", "fixed", "notBuilt", "regression", "success",
            "unstable", "unsuccessful");
    private static final Set<String> INPUT_FIELDS = set(
            "id", "message", "ok", "parameters", "submitter", "submitterParameter");
    private static final Set<String> PARAMETER_TYPES = set(
            "booleanParam", "choice", "credentials", "file", "password", "run", "string", "text");
    private static final Set<String> PIPELINE_ONLY_OPTIONS = set(
            "buildDiscarder", "checkoutToSubdirectory", "disableConcurrentBuilds", "disableResume",
            "durabilityHint", "newContainerPerStage", "overrideIndexTriggers", "parallelsAlwaysFailFast",
            "preserveStashes", "quietPeriod", "skipStagesAfterUnstable");

    private final String file;
    private final List<String> errors = new ArrayList<>();
    private final Map<String, Integer> stageLines = new LinkedHashMap<>();

    private JenkinsfileCheck(String file) {
        this.file = file;
    }

    public static void main(String[] args) {
        List<String> required = new ArrayList<>();
        List<String> files = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            if (args[i].equals("--require-stage") && i + 1 < args.length) {
                required.add(args[++i]);
            } else if (args[i].startsWith("--")) {
                System.err.println("JenkinsfileCheck: unknown option " + args[i]);
                System.exit(2);
            } else {
                files.add(args[i]);
            }
        }
        if (files.isEmpty()) {
            System.err.println("usage: JenkinsfileCheck [--require-stage NAME]... FILE...");
            System.exit(2);
        }
        int invalid = 0;
        for (String f : files) {
            JenkinsfileCheck check = new JenkinsfileCheck(f);
            check.run(required);
            if (check.errors.isEmpty()) {
                System.out.println(f + ": valid declarative pipeline, stages: " + String.join(" | ", check.stageLines.keySet()));
            } else {
                invalid++;
                for (String e : check.errors) {
                    System.out.println(e);
                }
            }
        }
        System.exit(invalid == 0 ? 0 : 1);
    }

    private static Set<String> set(String... names) {
        return new HashSet<>(Arrays.asList(names));
    }

    private void error(ASTNode node, String message) {
        if (node == null || node.getLineNumber() < 1) {
            errors.add(file + ": " + message);
        } else {
            errors.add(file + ":" + node.getLineNumber() + ": " + message);
        }
    }

    private void run(List<String> required) {
        ModuleNode module = parse();
        if (module == null) {
            return;
        }
        checkTopLevel(module);
        if (!errors.isEmpty()) {
            return;
        }
        int last = -1;
        List<String> names = new ArrayList<>(stageLines.keySet());
        for (String name : required) {
            int index = names.indexOf(name);
            if (index < 0) {
                error(null, "required stage '" + name + "' is missing");
            } else if (index < last) {
                error(null, "stage '" + name + "' (line " + stageLines.get(name) + ") comes before '" + names.get(last)
                        + "'; the required order is: " + String.join(" | ", required));
            } else {
                last = index;
            }
        }
    }

    private ModuleNode parse() {
        CompilationUnit unit = new CompilationUnit(new CompilerConfiguration());
        SourceUnit source = unit.addSource(new File(file));
        try {
            unit.compile(Phases.CONVERSION);
        } catch (MultipleCompilationErrorsException e) {
            for (Object o : e.getErrorCollector().getErrors()) {
                Message m = (Message) o;
                if (m instanceof SyntaxErrorMessage) {
                    SyntaxException s = ((SyntaxErrorMessage) m).getCause();
                    errors.add(file + ":" + s.getLine() + ":" + s.getStartColumn() + ": Groovy syntax error: "
                            + s.getOriginalMessage());
                } else {
                    errors.add(file + ": Groovy error: " + m);
                }
            }
            return null;
        } catch (RuntimeException e) {
            errors.add(file + ": cannot parse: " + e);
            return null;
        }
        return source.getAST();
    }

    // ---------------------------------------------------------------------------------------------
    // Helpers over the syntax tree

    private static MethodCallExpression call(Statement s) {
        if (s instanceof ExpressionStatement && ((ExpressionStatement) s).getExpression() instanceof MethodCallExpression) {
            return (MethodCallExpression) ((ExpressionStatement) s).getExpression();
        }
        return null;
    }

    private static List<Expression> arguments(MethodCallExpression c) {
        Expression a = c.getArguments();
        if (a instanceof TupleExpression) {
            return ((TupleExpression) a).getExpressions();
        }
        return List.of(a);
    }

    private static ClosureExpression closureArgument(MethodCallExpression c) {
        List<Expression> args = arguments(c);
        if (!args.isEmpty() && args.get(args.size() - 1) instanceof ClosureExpression) {
            return (ClosureExpression) args.get(args.size() - 1);
        }
        return null;
    }

    private static List<Statement> body(ClosureExpression closure) {
        Statement code = closure.getCode();
        if (code instanceof BlockStatement) {
            return ((BlockStatement) code).getStatements();
        }
        return List.of(code);
    }

    /** The section calls of a block: each statement must be `name(...)` or `name { }`. */
    private Map<String, MethodCallExpression> sections(List<Statement> statements, Set<String> allowed, String where) {
        Map<String, MethodCallExpression> found = new LinkedHashMap<>();
        for (Statement s : statements) {
            MethodCallExpression c = call(s);
            if (c == null || !c.isImplicitThis()) {
                error(s, "expected a section or directive in " + where + ", found '" + s.getText() + "'");
                continue;
            }
            String name = c.getMethodAsString();
            if (!allowed.contains(name)) {
                error(c, "'" + name + "' is not a section or directive allowed in " + where + " (allowed: "
                        + String.join(", ", new TreeSet<>(allowed)) + ")");
            } else if (found.containsKey(name)) {
                error(c, "'" + name + "' appears more than once in " + where);
            } else {
                found.put(name, c);
            }
        }
        return found;
    }

    private ClosureExpression requireClosure(MethodCallExpression c, String what) {
        ClosureExpression closure = closureArgument(c);
        if (closure == null) {
            error(c, what + " needs a { } block");
        }
        return closure;
    }

    // ---------------------------------------------------------------------------------------------
    // The Declarative model

    private void checkTopLevel(ModuleNode module) {
        List<MethodCallExpression> pipelines = new ArrayList<>();
        for (Statement s : module.getStatementBlock().getStatements()) {
            MethodCallExpression c = call(s);
            if (c != null && c.isImplicitThis() && c.getMethodAsString().equals("pipeline")) {
                pipelines.add(c);
            }
        }
        if (pipelines.size() != 1) {
            error(null, "expected exactly one top-level 'pipeline { }' block, found " + pipelines.size());
            return;
        }
        ClosureExpression closure = requireClosure(pipelines.get(0), "'pipeline'");
        if (closure == null) {
            return;
        }
        Map<String, MethodCallExpression> sections = sections(body(closure), PIPELINE_SECTIONS, "'pipeline'");
        for (String needed : new String[] {"agent", "stages"}) {
            if (!sections.containsKey(needed)) {
                error(pipelines.get(0), "'pipeline' has no '" + needed + "' section (required)");
            }
        }
        checkCommonSections(sections, true);
        if (sections.containsKey("stages")) {
            checkStages(sections.get("stages"));
        }
    }

    /** Sections shared by the pipeline and its stages. */
    private void checkCommonSections(Map<String, MethodCallExpression> sections, boolean pipelineLevel) {
        if (sections.containsKey("agent")) {
            checkAgent(sections.get("agent"));
        }
        if (sections.containsKey("environment")) {
            checkEnvironment(sections.get("environment"));
        }
        if (sections.containsKey("options")) {
            checkOptions(sections.get("options"), pipelineLevel);
        }
        if (sections.containsKey("post")) {
            checkPost(sections.get("post"));
        }
        if (sections.containsKey("parameters")) {
            checkParameters(sections.get("parameters"));
        }
        for (String block : new String[] {"tools", "triggers"}) {
            if (sections.containsKey(block)) {
                ClosureExpression c = requireClosure(sections.get(block), "'" + block + "'");
                if (c != null) {
                    for (Statement s : body(c)) {
                        if (call(s) == null) {
                            error(s, "'" + block + "' holds calls only, found '" + s.getText() + "'");
                        }
                    }
                }
            }
        }
    }

    private void checkAgent(MethodCallExpression agent) {
        List<Expression> args = arguments(agent);
        if (args.size() == 1 && args.get(0) instanceof VariableExpression) {
            String kind = ((VariableExpression) args.get(0)).getName();
            if (!kind.equals("any") && !kind.equals("none")) {
                error(agent, "'agent " + kind + "': expected 'any', 'none' or a { } block");
            }
            return;
        }
        ClosureExpression closure = requireClosure(agent, "'agent' (other than any/none)");
        if (closure == null) {
            return;
        }
        Map<String, MethodCallExpression> types = sections(body(closure), AGENT_TYPES, "'agent'");
        if (types.size() != 1) {
            error(agent, "'agent { }' needs exactly one agent type (" + String.join(", ", new TreeSet<>(AGENT_TYPES))
                    + "), found " + types.size());
        }
    }

    private void checkEnvironment(MethodCallExpression environment) {
        ClosureExpression closure = requireClosure(environment, "'environment'");
        if (closure == null) {
            return;
        }
        for (Statement s : body(closure)) {
            Expression e = s instanceof ExpressionStatement ? ((ExpressionStatement) s).getExpression() : null;
            if (!(e instanceof BinaryExpression)
                    || !((BinaryExpression) e).getOperation().getText().equals("=")
                    || !(((BinaryExpression) e).getLeftExpression() instanceof VariableExpression)) {
                error(s, "'environment' holds NAME = value assignments only, found '" + s.getText() + "'");
            }
        }
    }

    private void checkOptions(MethodCallExpression options, boolean pipelineLevel) {
        ClosureExpression closure = requireClosure(options, "'options'");
        if (closure == null) {
            return;
        }
        for (Statement s : body(closure)) {
            MethodCallExpression c = call(s);
            if (c == null || !c.isImplicitThis()) {
                error(s, "'options' holds option calls only, found '" + s.getText() + "'");
            } else if (!pipelineLevel && PIPELINE_ONLY_OPTIONS.contains(c.getMethodAsString())) {
                error(c, "option '" + c.getMethodAsString() + "' exists only at the pipeline level, not in a stage");
            }
        }
    }

    private void checkParameters(MethodCallExpression parameters) {
        ClosureExpression closure = requireClosure(parameters, "'parameters'");
        if (closure == null) {
            return;
        }
        for (Statement s : body(closure)) {
            MethodCallExpression c = call(s);
            if (c == null || !PARAMETER_TYPES.contains(c.getMethodAsString())) {
                error(s, "'parameters' holds " + String.join(", ", new TreeSet<>(PARAMETER_TYPES))
                        + " only, found '" + s.getText() + "'");
            }
        }
    }

    private void checkPost(MethodCallExpression post) {
        ClosureExpression closure = requireClosure(post, "'post'");
        if (closure == null) {
            return;
        }
        Map<String, MethodCallExpression> conditions = sections(body(closure), POST_CONDITIONS, "'post'");
        for (MethodCallExpression c : conditions.values()) {
            ClosureExpression steps = requireClosure(c, "post condition '" + c.getMethodAsString() + "'");
            if (steps != null) {
                checkStepList(body(steps), "post condition '" + c.getMethodAsString() + "'");
            }
        }
    }

    private void checkStages(MethodCallExpression stages) {
        ClosureExpression closure = requireClosure(stages, "'stages'");
        if (closure == null) {
            return;
        }
        List<Statement> statements = body(closure);
        if (statements.isEmpty()) {
            error(stages, "'stages' has no stage");
        }
        for (Statement s : statements) {
            MethodCallExpression c = call(s);
            if (c == null || !c.isImplicitThis() || !c.getMethodAsString().equals("stage")) {
                error(s, "'stages' holds stage('name') { } blocks only, found '" + s.getText() + "'");
                continue;
            }
            checkStage(c);
        }
    }

    private void checkStage(MethodCallExpression stage) {
        List<Expression> args = arguments(stage);
        if (args.size() != 2 || !(args.get(0) instanceof ConstantExpression)
                || !(((ConstantExpression) args.get(0)).getValue() instanceof String)
                || !(args.get(1) instanceof ClosureExpression)) {
            error(stage, "a stage is stage('name') { ... } with a string literal name, found '" + stage.getText() + "'");
            return;
        }
        String name = (String) ((ConstantExpression) args.get(0)).getValue();
        if (stageLines.containsKey(name)) {
            error(stage, "duplicate stage name '" + name + "' (first at line " + stageLines.get(name) + ")");
        } else {
            stageLines.put(name, stage.getLineNumber());
        }
        String where = "stage '" + name + "'";
        Map<String, MethodCallExpression> sections = sections(body((ClosureExpression) args.get(1)), STAGE_SECTIONS, where);
        Set<String> bodies = new HashSet<>(sections.keySet());
        bodies.retainAll(STAGE_BODIES);
        if (bodies.size() != 1) {
            error(stage, where + " needs exactly one of steps, stages, parallel, matrix; found "
                    + (bodies.isEmpty() ? "none" : String.join(", ", bodies)));
        }
        if (sections.containsKey("failFast") && !sections.containsKey("parallel") && !sections.containsKey("matrix")) {
            error(sections.get("failFast"), where + ": 'failFast' applies to parallel or matrix stages only");
        }
        checkCommonSections(sections, false);
        if (sections.containsKey("steps")) {
            ClosureExpression steps = requireClosure(sections.get("steps"), where + " 'steps'");
            if (steps != null) {
                if (body(steps).isEmpty()) {
                    error(sections.get("steps"), where + ": 'steps' is empty");
                }
                checkStepList(body(steps), where + " 'steps'");
            }
        }
        if (sections.containsKey("stages")) {
            checkStages(sections.get("stages"));
        }
        if (sections.containsKey("parallel")) {
            checkStages(sections.get("parallel"));
        }
        if (sections.containsKey("when")) {
            ClosureExpression when = requireClosure(sections.get("when"), where + " 'when'");
            if (when != null) {
                checkConditions(body(when), where + " 'when'");
            }
        }
        if (sections.containsKey("input")) {
            checkInput(sections.get("input"), where);
        }
    }

    private void checkConditions(List<Statement> statements, String where) {
        for (Statement s : statements) {
            MethodCallExpression c = call(s);
            if (c == null || !c.isImplicitThis() || !WHEN_CONDITIONS.contains(c.getMethodAsString())) {
                error(s, where + ": unknown condition '" + s.getText() + "' (known: "
                        + String.join(", ", new TreeSet<>(WHEN_CONDITIONS)) + ")");
                continue;
            }
            String name = c.getMethodAsString();
            if (name.equals("not") || name.equals("allOf") || name.equals("anyOf")) {
                ClosureExpression nested = requireClosure(c, "'" + name + "'");
                if (nested == null) {
                    continue;
                }
                int n = body(nested).size();
                if (name.equals("not") ? n != 1 : n < 1) {
                    error(c, "'" + name + "' needs " + (name.equals("not") ? "exactly one condition" : "at least one condition")
                            + ", found " + n);
                }
                checkConditions(body(nested), "'" + name + "'");
            } else if (name.equals("expression")) {
                requireClosure(c, "'expression'");
            }
        }
    }

    private void checkInput(MethodCallExpression input, String where) {
        ClosureExpression closure = requireClosure(input, where + " 'input'");
        if (closure == null) {
            return;
        }
        Map<String, MethodCallExpression> fields = sections(body(closure), INPUT_FIELDS, where + " 'input'");
        if (!fields.containsKey("message")) {
            error(input, where + ": 'input' needs a 'message'");
        }
        if (fields.containsKey("parameters")) {
            checkParameters(fields.get("parameters"));
        }
    }

    /** Declarative `steps` hold step calls; variables, assignments and control flow go in script { }. */
    private void checkStepList(List<Statement> statements, String where) {
        for (Statement s : statements) {
            MethodCallExpression c = call(s);
            if (c == null || !c.isImplicitThis()) {
                error(s, where + ": expected a step, found '" + s.getText()
                        + "' (assignments, declarations and control flow belong in script { })");
            } else if (c.getMethodAsString() == null) {
                error(s, where + ": expected a step with a plain name, found '" + s.getText() + "'");
            }
        }
    }
}
